# The grader's container image (Dockerfile, docs/DEPLOY.md): docker where there is a working engine,
# else podman; bases pulled where a registry can be reached, else made here (scripts/image.sh).
.PHONY: image image-run image-test

## build the container image resnet-grader (installs podman, runc and mmdebstrap when there is no docker)
image:
	scripts/image.sh build

## grade SUBMISSION in a fresh container (no network, --cpus 1 --memory 5g --pids-limit 1024) into OUT/results.json
image-run:
	scripts/image.sh run $(SUBMISSION) $(OUT)

## build the image, grade a correct, a broken and a hostile notebook in containers, compare with local grading
image-test: $(STAMP)
	$(PY) scripts/image_test.py $(IMAGE_TEST_ARGS)
