# Two entry points; each installs what it needs into .venv first.
#   make demo   the 2019 story on the embedded log (no Kafka, no server)
#   make test   the whole suite; first installs PostgreSQL (Debian's package,
#               when its binaries are missing) and fetches Apache Kafka's jars
#               (Maven Central, cached in ~/.cache/traceability-ledger).
#               The suite starts and stops both itself (tests/services/).
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test services kafka postgres
demo: $(VENV)/.installed
	$(VENV)/bin/ledger demo

test: $(VENV)/.installed services
	$(VENV)/bin/python -m pytest

# What the suite starts needs to be on the machine: PostgreSQL's server
# binaries (skipped when LEDGER_TEST_POSTGRES names a server) and, where Java
# is, Apache Kafka's jars (skipped when KAFKA_BOOTSTRAP names a broker).
services: $(VENV)/.installed
	@if [ -z "$$LEDGER_TEST_POSTGRES" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    && ! command -v initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (Debian package postgresql) for the test suite"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; \
	  else sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; fi; \
	fi
	@if [ -z "$$KAFKA_BOOTSTRAP" ] && command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then \
	  $(VENV)/bin/python tests/services/kafka_broker.py fetch >/dev/null; \
	fi

# For a walkthrough: a broker or a database in the foreground until Ctrl-C.
kafka: $(VENV)/.installed services
	$(VENV)/bin/python tests/services/kafka_broker.py --port $${PORT:-19092}

postgres: $(VENV)/.installed services
	$(VENV)/bin/python tests/services/postgres_cluster.py --port $${PORT:-55432}

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@
