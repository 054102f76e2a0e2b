# The benchmark (bench/run.py): floor, one grade, full execution and a batch, side by side;
# then the activation check's numerical margins (bench/margins.py).
.PHONY: bench margins

## print latency and throughput figures and their ratios, the same per notebook version, then the activation margins (takes several minutes)
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/versions.py
	$(PY) bench/margins.py

## print only the activation margins: correct variants, tolerance and mistakes side by side (~2 minutes)
margins: $(STAMP)
	$(PY) bench/margins.py
