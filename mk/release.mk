# The students' bundle (grader/release.py) and the browser the HTML report's test needs.
RELEASE_DIR ?= dist

.PHONY: release browser

## build what ships to students into $(RELEASE_DIR)/ResNets/ and $(RELEASE_DIR)/ResNets.zip
release: $(STAMP)
	$(PY) -m grader.release --out $(RELEASE_DIR)

## install headless Chromium (Debian's `chromium`) for tests/test_html_report.py; no-op when present
browser:
	scripts/install-chromium.sh
