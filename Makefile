# Two entry points; each installs what it needs into .venv first.
#   make demo   the 2019 story on the embedded log (no Kafka, no server)
#   make test   the whole suite; first installs what it needs from Debian when
#               missing (postgresql; chromium, poppler-utils and
#               libreoffice-calc-nogui for the tests that print the audit report
#               and workbook and look at the pages) and fetches Apache Kafka's jars
#               (Maven Central, cached in ~/.cache/traceability-ledger).
#               The suite starts and stops PostgreSQL and Kafka itself (tests/services/).
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test services kafka-jars kafka postgres
demo: $(VENV)/.installed
	$(VENV)/bin/ledger demo

# Byte-compiled first: the suite runs `ledger` as a process hundreds of times,
# and where PYTHONDONTWRITEBYTECODE is set (as on the CI machine) each of them
# would compile the project's modules again (0.50 -> 0.37 s a `ledger` command).
test: $(VENV)/.installed services
	$(VENV)/bin/python -m compileall -q ledger projections consumers bench tests >/dev/null
	$(VENV)/bin/python -m pytest

# What the suite starts needs to be on the machine: PostgreSQL's server
# binaries (skipped when LEDGER_TEST_POSTGRES names a server) and, where Java
# is, Apache Kafka's jars (skipped when KAFKA_BOOTSTRAP names a broker).
services: $(VENV)/.installed kafka-jars
	@missing=""; \
	if [ -z "$$LEDGER_TEST_POSTGRES" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if [ -z "$$LEDGER_TEST_CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1; then missing="$$missing chromium"; fi; \
	if ! command -v pdftotext >/dev/null 2>&1; then missing="$$missing poppler-utils"; fi; \
	lean=""; if ! command -v soffice >/dev/null 2>&1; then lean="libreoffice-calc-nogui"; fi; \
	if ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1; then missing="$$missing fonts-dejavu-core"; fi; \
	if [ -n "$$missing$$lean" ]; then \
	  echo "installing from Debian for the test suite:$$missing $$lean"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi; \
	  $$sudo apt-get update -q >/dev/null && \
	  if [ -n "$$missing" ]; then $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; fi && \
	  if [ -n "$$lean" ]; then $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$lean >/dev/null; fi; \
	fi

# Apache Kafka's jars, fetched once into ~/.cache (nothing from Debian).
kafka-jars: $(VENV)/.installed
	@if [ -z "$$KAFKA_BOOTSTRAP" ] && command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  $(VENV)/bin/python tests/services/kafka_broker.py fetch >/dev/null; \
	fi

# For a walkthrough: a broker or a database in the foreground until Ctrl-C.
kafka: $(VENV)/.installed kafka-jars
	$(VENV)/bin/python tests/services/kafka_broker.py --port $${PORT:-19092}

postgres: $(VENV)/.installed services
	$(VENV)/bin/python tests/services/postgres_cluster.py --port $${PORT:-55432}

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test,bench]'
	touch $@
