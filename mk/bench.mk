# The benchmark (bench/run.py): floor, one grade, full execution and a batch, side by side.
.PHONY: bench

## print latency and throughput figures and their ratios (takes several minutes)
bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)
