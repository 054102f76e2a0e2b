# syntax=docker/dockerfile:1
# The grader as a container image, for running it under any batch runner (see docs/DEPLOY.md):
#
#   docker build -t resnet-grader .
#   docker run --rm --network none -v "$PWD/sub:/autograder/submission:ro" \
#       -v "$PWD/out:/autograder/results" resnet-grader      # writes out/results.json
#
# It is the Gradescope autograder, not a second build of it: the first stage assembles
# autograder.zip with gradescope/build.py, the second lays it out as Gradescope does
# (/autograder/source), installs it with the zip's own setup.sh (same Ubuntu, same Python, same
# requirements.lock) and runs the zip's own run_autograder. tests/test_gradescope.py checks this.

FROM python:3.11-slim AS bundle
WORKDIR /project
COPY . .
RUN python gradescope/build.py --out /bundle/autograder.zip \
 && python -m zipfile -e /bundle/autograder.zip /bundle/source

FROM ubuntu:22.04
COPY --from=bundle /bundle/source /autograder/source
RUN bash /autograder/source/setup.sh \
 && cp /autograder/source/run_autograder /autograder/run_autograder \
 && chmod 0755 /autograder/run_autograder
WORKDIR /autograder
ENTRYPOINT ["/autograder/run_autograder"]
