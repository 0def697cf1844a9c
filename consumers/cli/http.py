"""`ledger serve` and `ledger credentials`: registered through consumers.cli.core.EXTENSIONS."""

from __future__ import annotations

import argparse
import json
import socket
import sys

from consumers.cli.common import EXIT_OK, EXIT_USAGE, CliError, Command, Ledger, output, print_csv, storage
from consumers.http.credentials import ROLES, CredentialError, issue
from consumers.projector import utc_now

__all__ = ["register"]

DEFAULT_PORT = 8080
GRACEFUL_SHUTDOWN_S = 3  # requests still running this long after Ctrl-C / SIGTERM are cancelled (streams end at once)

SERVE_EPILOG = """\
Serves the ledger over HTTP (docs/API.md): POST /v1/events, reads under /v1,
the alert stream /v1/alerts/stream, /openapi.json, /healthz, /readyz,
/metrics.  Every /v1 request needs a bearer token (`ledger credentials`).

The dashboard is at /dashboard/ (http://127.0.0.1:8080/dashboard/ by
default; docs/DASHBOARD.md): alerts as they happen, a lot's account and
chart, lineage, flows.  It asks for a token, which it keeps in the browser
tab only; issue one in another terminal with the same LEDGER_HOME:
  ledger credentials issue OPS-WALL --role dashboard     alerts only (a wall screen)
  ledger credentials issue METI-AUDIT --role auditor     every page, reads only
  ledger credentials issue KR-SEMI                       a party: its own lots and alerts

On the embedded log (the default) it appends and projects, as `ledger
ingest` does.  With --log kafka://... it only appends; run the projector
(`ledger kafka project`) beside it on the same --store.

examples:
  ledger serve                                     http://127.0.0.1:8080
  ledger serve --port 0                            any free port (printed)
  ledger serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem   HTTPS
  ledger serve --host 0.0.0.0 --log kafka://kafka:9092/ledger --store postgresql://ledger@db:5432/ledger

exit status:
  130 stopped by Ctrl-C (SIGTERM: ended by the signal, once shut down);  1 the log, store or port
  could not be opened;  2 usage error.
"""

CREDENTIALS_EPILOG = """\
A token is printed once, when issued; the ledger keeps only its SHA-256.
Roles: reporter (sends its own party's reports, reads its own lots and
alerts), auditor (reads everything, writes nothing), dashboard (alerts only).
Any of them signs in to the dashboard of `ledger serve` (/dashboard/).

examples:
  ledger credentials issue KR-SEMI                 a reporter token for KR-SEMI
  ledger credentials issue METI-AUDIT --role auditor
  ledger credentials list
  ledger credentials revoke cred-1a2b3c4d5e6f      one credential
  ledger credentials revoke --party KR-SEMI        every credential of a party

exit status:
  0 ok;  1 the credentials store could not be opened, or nothing to revoke;  2 usage error.
"""


def register(command: Command) -> None:
    p = command("serve", "Serve the ledger over HTTP: capture, queries, the live alert feed.", _cmd_serve,
                    epilog=SERVE_EPILOG)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM; with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--no-project", action="store_true",
                   help="only append to the log, even the embedded one (default: project on the embedded log)")
    _credentials_option(p)
    storage(p)

    p = command("credentials", "Issue, list and revoke the bearer tokens of parties.", _cmd_credentials,
                    epilog=CREDENTIALS_EPILOG)
    p.add_argument("action", choices=("issue", "list", "revoke"))
    p.add_argument("target", nargs="?", metavar="PARTY|CREDENTIAL_ID",
                   help="issue: the party id; revoke: a credential id (or use --party)")
    p.add_argument("--role", choices=ROLES, default="reporter", help="issue: the role (default: reporter)")
    p.add_argument("--party", help="list: only this party; revoke: every active credential of this party")
    output(p, "issue: one row with the token; list: one row per credential; revoke: one row per credential "
              "revoked", json_is="JSON for scripts")
    _credentials_option(p)
    storage(p)  # issue: the party must be in the store's registry, once it keeps one



def _credentials_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--credentials", metavar="URL",
                   help="credentials store (default: $LEDGER_CREDENTIALS, else sqlite:///$LEDGER_HOME/credentials.db)")


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from consumers import bootstrap
    from consumers.http.app import Server, create_app
    from consumers.http.backend import Backend, default_credentials_url
    from consumers.bootstrap import load_policy

    if bool(args.tls_cert) != bool(args.tls_key):
        print("ledger serve: --tls-cert and --tls-key go together", file=sys.stderr)
        return EXIT_USAGE
    backend = Backend(
        log_url=args.log or bootstrap.default_log_url(), store_url=args.store or bootstrap.default_store_url(),
        credentials_url=args.credentials or default_credentials_url(), policy=load_policy(args.policy),
        project=False if args.no_project else None,
    )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # proto IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on
    # connections accepted from a socket that says it is TCP.  Without it a
    # response written in two parts (headers, body) waited for the client's
    # delayed ACK: 40 ms on every request of a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        raise CliError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    sock.listen(128)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(create_app(backend), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, lifespan="on",
                            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key)
    try:
        config.load()  # reads the certificate and key now, so a bad one is said here
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        raise CliError(f"cannot use --tls-cert {args.tls_cert!r} / --tls-key {args.tls_key!r}: {error}") from None
    server = Server(config)  # ends the alert streams first on shutdown
    scheme = "https" if args.tls_cert else "http"
    if scheme == "http" and not _loopback(host):
        print(f"ledger serve: warning: listening on {host} without TLS: bearer tokens and reports travel in "
              f"clear text; use --tls-cert/--tls-key, or a TLS-terminating proxy in front", file=sys.stderr)
    print(f"ledger serve: listening on {scheme}://{shown}:{port}  (log {backend.log_url}, store {backend.store_url}, "
          f"{'projecting' if backend.project else 'appending only'})", flush=True)
    server.run(sockets=[sock])
    if not server.started:
        raise CliError("the server did not start: the log, store or credentials store could not be "
                            "opened (the reason is above)")
    return EXIT_OK


def _registered_ids(args: argparse.Namespace) -> set[str]:
    """The party registry's ids, from the projection store the ledger uses
    (empty when there is no store yet or nothing is registered: open)."""
    ledger = Ledger(args, must_exist=True)
    try:
        try:
            store = ledger.store
        except CliError:  # no store there yet: nothing is registered
            return set()
        return {party.party_id for party in store.registered_parties()}
    finally:
        ledger.close()


def _cmd_credentials(args: argparse.Namespace) -> int:
    from consumers.http.backend import default_credentials_url, open_credentials

    try:
        store = open_credentials(args.credentials or default_credentials_url())
    except CredentialError as error:
        raise CliError(str(error)) from None
    try:
        if args.action == "issue":
            if not args.target:
                return _usage("issue needs the party id: ledger credentials issue PARTY [--role ROLE]")
            try:
                credential, token = issue(store, args.target, args.role, at=utc_now(),
                                          registered=_registered_ids(args))
            except CredentialError as error:
                raise CliError(str(error)) from None
            issued = {"credential_id": credential.credential_id, "party": credential.party,
                      "role": credential.role, "token": token}
            if args.output == "csv":
                print_csv([issued])
            elif args.json:
                print(json.dumps(issued, indent=2))
            else:
                print(f"issued {credential.credential_id}: {credential.role} for {credential.party}", file=sys.stderr)
                print("the token is shown this once; the ledger keeps only its hash:", file=sys.stderr)
                print(token)
            return EXIT_OK
        if args.action == "revoke":
            if bool(args.target) == bool(args.party):
                return _usage("revoke needs one credential id, or --party PARTY (not both)")
            revoked = store.revoke(credential_id=args.target or None, party=args.party, at=utc_now())
            if not revoked:
                raise CliError(f"no active credential {'of ' + args.party if args.party else args.target!r}")
            if args.output == "csv":
                print_csv([{"credential_id": c} for c in revoked])
            else:
                print(json.dumps({"revoked": revoked}) if args.json else f"revoked {', '.join(revoked)}")
            return EXIT_OK
        rows = store.list(party=args.party)
        listed = [{"credential_id": c.credential_id, "party": c.party, "role": c.role, "issued_at": c.issued_at,
                   "revoked_at": c.revoked_at} for c in rows]
        if args.output == "csv":
            print_csv(listed, columns=("credential_id", "party", "role", "issued_at", "revoked_at"))
        elif args.json:
            print(json.dumps(listed, indent=2))
        elif not rows:
            print("no credentials issued")
        else:
            from consumers.render import table

            print(table(("CREDENTIAL", "PARTY", "ROLE", "ISSUED", "REVOKED"),
                        [(c.credential_id, c.party, c.role, c.issued_at[:19], (c.revoked_at or "")[:19])
                         for c in rows]))
        return EXIT_OK
    finally:
        store.close()


def _usage(message: str) -> int:
    print(f"ledger credentials: {message}", file=sys.stderr)
    return EXIT_USAGE


def _loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
