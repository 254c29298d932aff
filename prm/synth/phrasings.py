"""Phrasing families of `prm synth` beyond `story` (`prm.synth.templates`), and the family split.

Three families are for training (`story`, `chat`, `ledger`) and one is held out (`report`, in the past tense, with
its own verbs, questions, answer line and distractors), so that a PRM can be tested on sentences it never saw:
`prm synth --phrasing heldout`. Every family mixes solution styles: the equation last or first, with or without the
unit. Placeholders are those of `prm.synth.templates`.

    >>> [f.name for f in families("train")], [f.name for f in families("heldout")]
    (['story', 'chat', 'ledger'], ['report'])
"""

from __future__ import annotations

from prm.synth.templates import STORY, Family

CHAT = Family(
    name="chat",
    split="train",
    connectors=("", "", "{P}", "Then {p}", "Afterwards {p}", "A bit later, {p}", "Soon {p}"),
    intros=(
        "{n} has got {a} {ita}.",
        "Right now {n} has {a} {ita}.",
        "There are {a} {ita} in {n}'s {box}.",
        "{n} counts {a} {ita} in {pp} room.",
        "{n}'s collection is {a} {ita}.",
    ),
    questions=(
        "How many {it} does {n} have after all that?",
        "What's the number of {it} {n} has now?",
        "Can you work out how many {it} {n} has?",
        "How many {it} are with {n} at the end?",
    ),
    add=(
        ("{S} picks up {k} more {itk}.", "{n} picks up {k} more: {a} + {k} = {c} {itc}."),
        ("{S} gets {k} {itk} from {o}.", "{a} + {k} = {c}, since {o} gives {n} {k} {itk}."),
        ("{S} earns {k} {itk} for helping out.", "Earning {k} means {a} + {k} = {c} {itc}."),
        ("{S} collects another {k} {itk}.", "With {k} more collected, {n} now has {a} + {k} = {c}."),
        ("{o} passes {n} {k} extra {itk}.", "{o}'s {k} extra {itk} make {k} + {a} = {c} {itc}."),
    ),
    sub=(
        ("{S} trades {k} {itk} to {o}.", "Trading away {k} leaves {a} - {k} = {c} {itc}."),
        ("{S} drops {k} {itk} on the way home.", "{a} - {k} = {c} {itc}, because {n} drops {k}."),
        ("{S} donates {k} {itk} to a school.", "After donating {k}, {n} keeps {a} - {k} = {c} {itc}."),
        ("{S} lends {k} {itk} to {o}.", "{n} lends out {k}, so {a} - {k} = {c} {itc} are left."),
    ),
    sub_edible=(("{S} snacks on {k} of the {it}.", "{n} snacks on {k}: {a} - {k} = {c} {itc} remain."),),
    mul=(
        ("{S} multiplies {pp} collection by {k}.", "Multiplying by {k}: {a} * {k} = {c} {itc}."),
        ("{S} ends up with {k} times the {it} {p} had.", "{k} times {a} is {k} * {a} = {c} {itc}."),
        ("Every one of {pp} {it} turns into {k}.", "Each turning into {k} gives {a} * {k} = {c} {itc}."),
    ),
    mul_by={
        2: (("{S} gets twice as many {it} as {p} had.", "Twice {a} is {a} * 2 = {c} {itc}."),),
        3: (("{S} ends with three times the {it}.", "{a} * 3 = {c} {itc}, three times as many."),),
    },
    mul_intro=(
        ("{n} picks up {k} {boxes} that hold {a} {ita} each.", "{k} {boxes} with {a} each: {k} * {a} = {c} {itc}."),
        ("There are {k} {boxes} with {a} {ita} apiece, and {n} takes them all.", "{n} takes {k} * {a} = {c} {itc}."),
    ),
    div=(
        (
            "{S} divides {pp} {it} into {k} equal groups and keeps one group.",
            "One group out of {k} is {a} / {k} = {c} {itc}.",
        ),
        (
            "{S} puts {pp} {it} into {k} equal stacks and keeps a single stack.",
            "{a} / {k} = {c} {itc} in the stack {n} keeps.",
        ),
        (
            "{S} shares {pp} {it} equally in a group of {k}, {self} included.",
            "Each of the {k} gets {a} / {k} = {c}, so {n} has {c} {itc}.",
        ),
    ),
    div_by={
        2: (("{S} gives {o} half of the {it}.", "Half of {a} is {a} / 2 = {c} {itc}."),),
        3: (("{S} keeps one third of the {it}.", "A third of {a} is {a} / 3 = {c}."),),
    },
    div_last=(
        (
            "{S} hands out all the {it} evenly to {k} kids.",
            "Every kid gets {a} / {k} = {c} {itc}.",
            "How many {it} does each kid get?",
        ),
        (
            "{S} puts all the {it} into {boxes} holding {k} each.",
            "That fills {a} / {k} = {c} {boxc}.",
            "How many {boxes} get filled?",
        ),
    ),
    answer="So the answer is {c}.",
    distractors=("{o} has {x} {it} too, but keeps them.", "The {box} is {x} years old."),
)

LEDGER = Family(
    name="ledger",
    split="train",
    connectors=("", "{P}", "Next {p}", "Following that, {p}", "Then {p}"),
    intros=(
        "{n} begins the day with {a} {ita}.",
        "{n}'s count of {it} is {a}.",
        "{n} holds {a} {ita}.",
        "{n} stores {a} {ita} in a {box}.",
    ),
    questions=(
        "What is {n}'s final count of {it}?",
        "How many {it} does {n} hold in total at the end?",
        "Find the number of {it} {n} has at the end.",
        "What number of {it} does {n} finish with?",
    ),
    add=(
        ("{S} adds {k} {itk} to the {box}.", "Add {k}: {a} + {k} = {c}."),
        ("{S} gains {k} {itk}.", "Gain of {k}: {a} + {k} = {c} {itc}."),
        ("{S} takes in {k} more {itk}.", "{a} + {k} = {c} {itc} after taking in {k}."),
        ("{k} new {itk} arrive for {n}.", "{k} arrive: {k} + {a} = {c} {itc}."),
    ),
    sub=(
        ("{S} removes {k} {itk} from the {box}.", "Remove {k}: {a} - {k} = {c}."),
        ("{S} spends {k} {itk}.", "Spending {k}: {a} - {k} = {c} {itc}."),
        ("{S} throws out {k} broken {itk}.", "{a} - {k} = {c} {itc} after throwing {k} out."),
        ("{S} returns {k} {itk} to the shop.", "Returning {k} leaves {a} - {k} = {c}."),
    ),
    sub_edible=(("{S} uses {k} {itk} in a recipe.", "The recipe takes {k}: {a} - {k} = {c} {itc}."),),
    mul=(
        ("{S} multiplies the count by {k}.", "Multiply by {k}: {a} * {k} = {c}."),
        ("The count of {it} grows by a factor of {k}.", "Factor {k}: {a} * {k} = {c} {itc}."),
        ("{S} fills {k} {boxes}, each with as many {it} as {p} has now.", "{k} * {a} = {c} {itc} in {k} {boxes}."),
    ),
    mul_by={
        2: (("The count of {it} doubles.", "Double: {a} * 2 = {c}."),),
        3: (("{S} triples the count.", "Triple: {a} * 3 = {c} {itc}."),),
    },
    mul_intro=(
        ("{n} orders {k} {boxes} of {a} {ita}.", "Order: {k} * {a} = {c} {itc}."),
        ("{n} receives {k} {boxes} holding {a} {ita} each.", "{k} * {a} = {c} {itc} received."),
    ),
    div=(
        ("{S} divides the {it} into {k} equal parts and keeps one part.", "One part of {k}: {a} / {k} = {c}."),
        ("{S} packs the {it} equally into {k} {boxes} and keeps one {box}.", "Per {box}: {a} / {k} = {c} {itc}."),
        ("{S} keeps a share of one in {k} of the {it}.", "Share of one in {k}: {a} / {k} = {c}."),
    ),
    div_by={
        2: (("{S} sells half of the {it}.", "Half remain: {a} / 2 = {c}."),),
        3: (("{S} keeps one third and gives away the rest.", "Third kept: {a} / 3 = {c} {itc}."),),
    },
    div_last=(
        (
            "{S} deals all the {it} equally to {k} players.",
            "Per player: {a} / {k} = {c} {itc}.",
            "How many {it} does each player get?",
        ),
        ("{S} bundles all the {it} in groups of {k}.", "Groups: {a} / {k} = {c}.", "How many groups does {n} make?"),
    ),
    answer="Answer: {c}",
    distractors=("{o} owns {x} {boxes}.", "The walk to the shop takes {x} minutes."),
)

# Held out: past tense, other verbs and questions, another answer line. Nothing here may be copied into a
# training family, or the held-out figures stop meaning "unseen sentences".
REPORT = Family(
    name="report",
    split="heldout",
    connectors=("", "{P}", "Subsequently {p}", "Afterward, {p}", "Later on, {p}"),
    intros=(
        "Initially, {n} had {a} {ita}.",
        "{n} was holding {a} {ita}.",
        "On Monday {n} had a collection of {a} {ita}.",
        "{n} once had {a} {ita} on a shelf.",
    ),
    questions=(
        "How many {it} did {n} have after these events?",
        "What was the number of {it} {n} had in the end?",
        "Determine how many {it} {n} had at the finish.",
        "How many {it} did {n} end with?",
    ),
    add=(
        ("{S} gathered {k} additional {itk}.", "Gathering {k} additional {itk} brought {n} to {a} + {k} = {c}."),
        ("{S} was handed {k} {itk} by {o}.", "With {k} from {o}, the total became {a} + {k} = {c} {itc}."),
        ("{S} brought home {k} {itk}.", "{a} + {k} = {c}: that is the count once {k} came home."),
        ("{S} discovered {k} {itk} under the bed.", "Discovering {k} raised the count to {k} + {a} = {c} {itc}."),
    ),
    sub=(
        ("{S} mailed {k} {itk} to {o}.", "Mailing {k} left {a} - {k} = {c} {itc}."),
        ("{S} misplaced {k} {itk}.", "{a} - {k} = {c} {itc} were left after misplacing {k}."),
        ("{S} handed {k} {itk} over to {o}.", "After handing over {k}, {n} was down to {a} - {k} = {c}."),
        ("{S} parted with {k} {itk}.", "Parting with {k} reduced the count to {a} - {k} = {c} {itc}."),
    ),
    sub_edible=(("{S} ate {k} {itk} for lunch.", "Lunch used up {k}, so {a} - {k} = {c} {itc} were left."),),
    mul=(
        (
            "The number of {it} {n} had grew to {k} times its size.",
            "Growing {k} times gave {a} * {k} = {c} {itc}.",
        ),
        (
            "{S} acquired {k} {boxes}, each containing as many {it} as {p} had owned.",
            "{k} {boxes} of {a} came to {k} * {a} = {c} {itc}.",
        ),
        ("{S} swapped every item for {k} new {itk}.", "Trading each for {k} produced {a} * {k} = {c} {itc}."),
    ),
    mul_by={
        2: (("The {it} {n} had were doubled.", "Doubling resulted in {a} * 2 = {c} {itc}."),),
        3: (("{S} saw the {it} triple.", "Tripled, that came to {a} * 3 = {c}."),),
    },
    mul_intro=(
        (
            "{n} purchased {k} {boxes}, each containing {a} {ita}.",
            "{k} {boxes} containing {a} each gave {k} * {a} = {c} {itc}.",
        ),
        ("{n} was given {k} {boxes} of {a} {ita}.", "Altogether that was {k} * {a} = {c} {itc}."),
    ),
    div=(
        (
            "{S} arranged the {it} into {k} equal rows and kept a single row.",
            "A single row of {k} held {a} / {k} = {c} {itc}.",
        ),
        (
            "{S} distributed the {it} evenly among {k} people, counting {self}.",
            "Each person, {n} included, received {a} / {k} = {c}.",
        ),
        ("{S} retained one out of every {k} {it}.", "Retaining one in {k} left {a} / {k} = {c} {itc}."),
    ),
    div_by={
        2: (("{S} donated half of the {it}.", "The half that remained was {a} / 2 = {c}."),),
        3: (("{S} held on to only a third of the {it}.", "A third amounted to {a} / 3 = {c} {itc}."),),
    },
    div_last=(
        (
            "{S} allotted all the {it} equally among {k} classmates.",
            "Every classmate received {a} / {k} = {c} {itc}.",
            "How many {it} did each classmate receive?",
        ),
        (
            "{S} arranged all the {it} into stacks of {k}.",
            "There were {a} / {k} = {c} stacks.",
            "How many stacks did {n} make?",
        ),
    ),
    answer="The final answer is {c}.",
    distractors=("{o}, a neighbour, had {x} {it} at the time.", "The {box} had been bought {x} days earlier."),
)

FAMILIES = {f.name: f for f in (STORY, CHAT, LEDGER, REPORT)}
PHRASINGS = ("train", "heldout", *FAMILIES)


def families(phrasing: str) -> tuple[Family, ...]:
    """The families a `--phrasing` value draws from: a split (train, heldout) or one family by name."""
    if phrasing in FAMILIES:
        return (FAMILIES[phrasing],)
    if phrasing not in ("train", "heldout"):
        raise ValueError(f"phrasing: unknown {phrasing!r} (known: {', '.join(PHRASINGS)})")
    return tuple(f for f in FAMILIES.values() if f.split == phrasing)
