"""Runs a command against a throwaway PostgreSQL server on 127.0.0.1 (Debian's postgresql package).

It makes a cluster with initdb in a temporary folder (password authentication on, fsync off), starts
it with pg_ctl on a free port of 127.0.0.1 (its Unix socket stays in the temporary folder), creates
the database, runs the command and then stops the server and deletes the folder, also when the
command fails or the run is interrupted. The command sees:

  SHARDVEC_TEST_PG_DSN   postgresql://shardvec:<password>@127.0.0.1:<port>/shardvec_test

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` system user that the
Debian package creates. Binaries come from /usr/lib/postgresql/<newest>/bin (or $SHARDVEC_PG_BIN).

Usage: python3 scripts/pg_test_server.py -- COMMAND [ARGS...]
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from test_server_common import free_port, wrapped_command

USER = "shardvec"
DATABASE = "shardvec_test"


def pg_bin_dir() -> Path:
    configured = os.environ.get("SHARDVEC_PG_BIN")
    candidates = [Path(configured)] if configured else sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    sys.exit("pg test server: no initdb/pg_ctl under /usr/lib/postgresql/*/bin (SHARDVEC_PG_BIN): "
             "run scripts/setup, which installs Debian's postgresql package")


def server_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None for the current one, `postgres` when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        sys.exit("pg test server: PostgreSQL does not run as root and there is no `postgres` user "
                 "(Debian's postgresql package creates it)")


def run(args: list[str], account: pwd.struct_passwd | None, log: Path, **kwargs: object) -> None:
    with log.open("ab") as out:
        code = subprocess.call(args, stdout=out, stderr=subprocess.STDOUT,
                               user=account.pw_uid if account else None,
                               group=account.pw_gid if account else None,
                               extra_groups=[] if account else None, **kwargs)  # type: ignore[arg-type]
    if code != 0:
        sys.exit(f"pg test server: {Path(args[0]).name} failed (exit {code}):\n{log.read_text()}")


def main() -> int:
    args = wrapped_command(__doc__)
    bin_dir = pg_bin_dir()
    account = server_user()
    password = secrets.token_hex(16)
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="shardvec-pg-"))
    data, log, pwfile = tmp / "data", tmp / "server.log", tmp / "pwfile"
    started = False
    # SIGTERM (a CI timeout, a kill of this script) stops the server too, like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        pwfile.write_text(password + "\n")
        log.touch()
        if account:
            for path in (tmp, pwfile, log):
                os.chown(path, account.pw_uid, account.pw_gid)
        run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"], account, log)
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={tmp} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = True
        run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60",
             "start"], account, log)
        env_pw = dict(os.environ, PGPASSWORD=password)
        run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            None, log, env=env_pw)
        dsn = f"postgresql://{USER}:{password}@127.0.0.1:{port}/{DATABASE}"
        env = dict(os.environ, SHARDVEC_TEST_PG_DSN=dsn)
        print(f"pg test server: 127.0.0.1:{port} database {DATABASE} (PostgreSQL {bin_dir.parent.name})",
              flush=True)
        return subprocess.call(args, env=env)
    except KeyboardInterrupt:
        return 130
    finally:
        if started:
            subprocess.call([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            user=account.pw_uid if account else None,
                            group=account.pw_gid if account else None,
                            extra_groups=[] if account else None)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
