"""The words of `prm synth`: people, things, and the `story` family of phrasings (the other families are in
`prm.synth.phrasings`).

A family is one voice: its own intros, questions, connectors, answer line, distractors and, per operation, several
phrasings. Each phrasing pairs a sentence of the problem with the sentence of the gold solution that restates it with its
equation. Placeholders (filled with `str.format_map`, see `prm.synth.words.render_plan`):

    {S}  subject of a problem sentence: the name, or a connector and a pronoun ("Then she")
    {n}  the name; {p} she/he; {pp} her/his; {self} herself/himself; {o} another person's name
    {a}  the running value before the step; {k} the step's number; {c} the result
    {it} the things, plural; {itk} / {itc} / {ita} agreeing with k / c / a (1 apple, 2 apples)
    {box} / {boxes} a container of the things; {boxc} agreeing with c
    {x}  a distractor's number (unrelated to the problem)

    >>> ADD[0][0].format_map({"S": "Then she", "k": 3, "itk": "marbles"})
    'Then she buys 3 more marbles.'
"""

from __future__ import annotations

from dataclasses import dataclass, field

# (name, subject pronoun, object pronoun, possessive)
PEOPLE = tuple(
    [
        (n, "she", "her", "her")
        for n in "Mia Ava Zoe Lily Emma Nora Ruth Sofia Hana Priya Amara Chloe Ines Maya Leah".split()
    ]
    + [
        (n, "he", "him", "his")
        for n in "Leo Sam Omar Ben Noah Ravi Hugo Theo Kai Luis Jonas Eli Tariq Max Finn".split()
    ]
)

# (singular, plural, container singular, container plural, edible)
THINGS = (
    ("apple", "apples", "basket", "baskets", True),
    ("marble", "marbles", "jar", "jars", False),
    ("sticker", "stickers", "sheet", "sheets", False),
    ("coin", "coins", "purse", "purses", False),
    ("book", "books", "box", "boxes", False),
    ("cookie", "cookies", "tin", "tins", True),
    ("pencil", "pencils", "case", "cases", False),
    ("seashell", "seashells", "bucket", "buckets", False),
    ("trading card", "trading cards", "pack", "packs", False),
    ("strawberry", "strawberries", "bowl", "bowls", True),
    ("cupcake", "cupcakes", "tray", "trays", True),
    ("balloon", "balloons", "bunch", "bunches", False),
    ("bead", "beads", "bag", "bags", False),
    ("stamp", "stamps", "album", "albums", False),
    ("crayon", "crayons", "box", "boxes", False),
    ("toy car", "toy cars", "bin", "bins", False),
)

# Connectors vary how a sentence starts; "{P}" is the capitalised pronoun, "" means the plain name.
CONNECTORS = ("", "", "{P}", "Then {p}", "Later {p}", "After that, {p}", "Next, {p}")

INTROS = (
    "{n} has {a} {ita}.",
    "{n} starts with {a} {ita}.",
    "At first, {n} has {a} {ita}.",
    "{n} keeps {a} {ita} in a {box}.",
    "{n} owns {a} {ita}.",
)

QUESTIONS = (
    "How many {it} does {n} have now?",
    "How many {it} does {n} have at the end?",
    "How many {it} does {n} end up with?",
    "In the end, how many {it} does {n} have?",
)

# (problem sentence, solution sentence). Every solution sentence holds exactly one equation "a op b = c".
ADD = (
    ("{S} buys {k} more {itk}.", "{n} buys {k} more, so {p} has {a} + {k} = {c} {itc}."),
    ("{S} finds {k} more {itk}.", "{n} finds {k} more {itk}, so now {p} has {a} + {k} = {c} {itc}."),
    ("{S} receives {k} {itk} from {o}.", "{n} receives {k} from {o}, so {p} has {a} + {k} = {c} {itc}."),
    ("{S} is given {k} more {itk} by {o}.", "After getting {k} more from {o}, {n} has {a} + {k} = {c} {itc}."),
    ("{S} wins {k} {itk} in a game.", "Winning {k} {itk} gives {n} {a} + {k} = {c} {itc}."),
)

SUB = (
    ("{S} gives {k} {itk} to {o}.", "{n} gives {k} {itk} to {o}, so {p} has {a} - {k} = {c} {itc} left."),
    ("{S} gives away {k} {itk}.", "{n} gives away {k} {itk}, so {p} has {a} - {k} = {c} {itc}."),
    ("{S} loses {k} {itk}.", "{n} loses {k}, which leaves {a} - {k} = {c} {itc}."),
    ("{S} sells {k} of {pp} {it}.", "After selling {k}, {n} has {a} - {k} = {c} {itc}."),
)
SUB_EDIBLE = (("{S} eats {k} of {pp} {it}.", "{n} eats {k}, so {p} has {a} - {k} = {c} {itc} left."),)

MUL = (
    ("{S} fills {k} {boxes} with that many {it} each.", "{k} {boxes} of {a} {ita} hold {a} * {k} = {c} {itc}."),
    (
        "By the end of the month, {n} has {k} times as many {it} as before.",
        "{k} times as many as before is {a} * {k} = {c} {itc}.",
    ),
    ("Each of {pp} {it} is swapped for {k} new ones.", "Swapping each for {k} gives {n} {a} * {k} = {c} {itc}."),
)
MUL_BY = {
    2: (("{S} doubles {pp} number of {it}.", "Doubling gives {n} {a} * 2 = {c} {itc}."),),
    3: (("The number of {it} {n} has triples.", "Tripling gives {n} {a} * 3 = {c} {itc}."),),
}
# "buys k packs of m": only as the opening of a problem whose first step multiplies; it replaces the intro sentence.
MUL_INTRO = (
    ("{n} buys {k} {boxes} with {a} {ita} in each.", "{n} buys {k} {boxes} of {a}, so {p} has {k} * {a} = {c} {itc}."),
    ("{n} has {k} {boxes}, and each holds {a} {ita}.", "{k} {boxes} of {a} {ita} make {k} * {a} = {c} {itc}."),
)

DIV = (
    (
        "{S} splits {pp} {it} into {k} equal piles and keeps one pile.",
        "One of {k} equal piles holds {a} / {k} = {c} {itc}, and {n} keeps it.",
    ),
    (
        "{S} shares {pp} {it} equally among {k} children, {self} included.",
        "{n}'s share is {a} / {k} = {c} {itc}.",
    ),
    (
        "{S} keeps only 1 of every {k} {it} and donates the rest.",
        "Keeping 1 of every {k}, {n} has {a} / {k} = {c} {itc}.",
    ),
)
DIV_BY = {
    2: (("{S} gives half of {pp} {it} to {o}.", "{n} keeps the other half: {a} / 2 = {c} {itc}."),),
    3: (("{S} keeps a third of {pp} {it} and gives the rest to {o}.", "So {n} keeps {a} / 3 = {c} {itc}."),),
}
# Divisions that change what is counted; only as the last step, so they bring their own question.
DIV_LAST = (
    (
        "{S} shares all {pp} {it} equally among {k} friends.",
        "Each friend gets {a} / {k} = {c} {itc}.",
        "How many {it} does each friend get?",
    ),
    (
        "{S} packs all {pp} {it} into {boxes} of {k}.",
        "{n} fills {a} / {k} = {c} {boxc}.",
        "How many {boxes} does {n} fill?",
    ),
)

ANSWER = "The answer is {c}."
DISTRACTORS = ("{o} has {x} {it} of {pp} own.", "{n}'s {box} is {x} years old.")


@dataclass(frozen=True)
class Family:
    """One voice of problems and solutions. `split` puts the whole family on one side of the phrasing split
    (`prm synth --phrasing train|heldout`), so a held-out test set uses sentences no training record used."""

    name: str
    split: str  # "train" or "heldout"
    connectors: tuple[str, ...]
    intros: tuple[str, ...]
    questions: tuple[str, ...]
    add: tuple
    sub: tuple
    sub_edible: tuple
    mul: tuple
    mul_intro: tuple
    div: tuple
    div_last: tuple
    answer: str
    distractors: tuple[str, ...]
    mul_by: dict = field(default_factory=dict)
    div_by: dict = field(default_factory=dict)

    def pools(self) -> list[tuple]:
        """Every (problem, solution[, question]) phrasing of the family."""
        return [
            self.add,
            self.sub,
            self.sub_edible,
            self.mul,
            self.mul_intro,
            self.div,
            self.div_last,
            *self.mul_by.values(),
            *self.div_by.values(),
        ]


STORY = Family(
    name="story",
    split="train",
    connectors=CONNECTORS,
    intros=INTROS,
    questions=QUESTIONS,
    add=ADD,
    sub=SUB,
    sub_edible=SUB_EDIBLE,
    mul=MUL,
    mul_intro=MUL_INTRO,
    div=DIV,
    div_last=DIV_LAST,
    answer=ANSWER,
    distractors=DISTRACTORS,
    mul_by=MUL_BY,
    div_by=DIV_BY,
)
