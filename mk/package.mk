# The grader as a Python package (pyproject.toml): a wheel to `pip install` where the course runs.
.PHONY: wheel

## build dist/resnet_grader-*.whl (offline: this venv's setuptools; nothing left over from an earlier build)
wheel: $(STAMP)
	rm -rf build/lib build/bdist.* resnet_grader.egg-info
	$(PY) -m pip wheel . --no-deps --no-build-isolation --no-index --quiet -w dist
	@ls -l dist/resnet_grader-*.whl
