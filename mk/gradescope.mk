# Gradescope autograder package (docs/DEPLOY.md). The container image: docker build -t resnet-grader .
.PHONY: gradescope

## build build/autograder.zip: upload it to Gradescope as the assignment's autograder
gradescope: $(STAMP)
	$(PY) gradescope/build.py --out build/autograder.zip
