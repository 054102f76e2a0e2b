# syntax=docker/dockerfile:1
# The grader as a container image, for running it under any batch runner (see docs/DEPLOY.md):
#
#   make image                                    # docker where there is one, else podman
#   make image-run SUBMISSION=nb.ipynb OUT=out    # grades one notebook: out/results.json
#
# or by hand:
#
#   docker build -t resnet-grader .
#   docker run --rm --network none --cpus 1 --memory 5g \
#       -v "$PWD/sub:/autograder/submission:ro" -v "$PWD/out:/autograder/results" resnet-grader
#
# It is the Gradescope autograder, not a second build of it: the first stage assembles
# autograder.zip with gradescope/build.py, the second lays it out as Gradescope does
# (/autograder/source), installs it with the zip's own setup.sh (same Python, same
# requirements.lock) and runs the zip's own run_autograder. tests/test_gradescope.py checks this.
# PrairieLearn runs the same image as an external grader, with the zip's prairielearn/run.sh as the
# question's entrypoint (prairielearn/README.md; tests/test_prairielearn.py).
#
# The bases are build arguments. The defaults are Gradescope's Ubuntu 22.04 and an official Python
# for the builder; where no image registry can be reached, `make image` (scripts/image.sh) makes a
# Debian bookworm base itself and passes it in (BASE and BUNDLE_BASE: any image with python3).
ARG BUNDLE_BASE=python:3.11-slim
ARG BASE=ubuntu:22.04

FROM ${BUNDLE_BASE} AS bundle
WORKDIR /project
COPY . .
RUN python3 gradescope/build.py --out /bundle/autograder.zip \
 && python3 -m zipfile -e /bundle/autograder.zip /bundle/source

FROM ${BASE}
COPY --from=bundle /bundle/source /autograder/source
RUN bash /autograder/source/setup.sh \
 && cp /autograder/source/run_autograder /autograder/run_autograder \
 && chmod 0755 /autograder/run_autograder
WORKDIR /autograder
ENTRYPOINT ["/autograder/run_autograder"]
