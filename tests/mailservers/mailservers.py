#!/usr/bin/env python3
"""Real mail servers for the tests of the IMAP/SMTP mailbox provider.

    python3 tests/mailservers/mailservers.py --dir DIR [--no-drafts]
    python3 tests/mailservers/mailservers.py --self-test

With --dir, starts for one test a private Dovecot (IMAP, and LMTP for
delivery) and an aiosmtpd submission server that delivers into it, all on
free 127.0.0.1 ports and with every file inside DIR, so that many instances
can run at once. When everything accepts connections it prints one JSON line:

    {"imaps_port": N, "imap_starttls_port": N, "imaps_wrong_cert_port": N,
     "imaps_proxy_port": N, "smtps_port": N, "submission_starttls_port": N,
     "ca": "DIR/ca.pem", "dir": "DIR", "dovecot_pid": N}

and then reads commands from stdin, one a line, each answered by one JSON
line, {"ok": true, ...} or {"ok": false, "error": "..."}:

    password USER NEWPASS          new password for IMAP and SMTP from the
                                   next login on (the answer can take up to
                                   a second: Dovecot looks at DIR/users at
                                   most once a second)
    restart-dovecot                stop Dovecot (cutting every IMAP
                                   connection), start it on the same ports;
                                   answers {"ok": true, "dovecot_pid": N}
    deliver USER RAW_PATH          deliver that file's message to USER's INBOX
    count USER MAILBOX HEADER VALUE
                                   {"ok": true, "count": N}: messages in
                                   MAILBOX whose HEADER is exactly VALUE
    reset-uidvalidity USER         give USER's INBOX a new UIDVALIDITY, its
                                   messages kept (renumbered from UID 1), as
                                   a server that rebuilt its index looks to
                                   its clients: stops Dovecot (cutting every
                                   IMAP connection), deletes the INBOX's
                                   dovecot-uidlist and dovecot.index* and the
                                   mailbox list index (the other folders'
                                   files stay), starts it on the same ports;
                                   answers {"ok": true, "uidvalidity": N,
                                   "dovecot_pid": N}, N the new value as
                                   STATUS shows it: the next value of the
                                   user's counter (Maildir/dovecot-uidvalidity,
                                   kept; the first value was the time), so
                                   it differs even within the same second.

The last argument of each command runs to the end of the line (it may hold
spaces). The servers stop, and the script exits 0, when stdin closes or on
SIGTERM.

Users (domain example.test): alice@example.test / secret-alice and
bob@example.test / secret-bob, with the special-use folders Drafts, Sent,
Trash and Junk; with --no-drafts also nodrafts@example.test /
secret-nodrafts, who has no Drafts folder at all.

IMAP: LOGIN and AUTHENTICATE PLAIN/LOGIN; IDLE; LIST RETURN (SPECIAL-USE).
Dovecot counts connections from 127.0.0.1 as secure, so on
imap_starttls_port it accepts a login before STARTTLS too. A wrong password
is answered NO [AUTHENTICATIONFAILED] after about half a second.

imaps_proxy_port: implicit TLS, ended by this script with the localhost
certificate, in front of Dovecot's imap_starttls_port (plaintext; a
connection's end ends the other). It passes everything unchanged, LITERAL+
and IDLE included, except in one fault: while the file
DIR/faults/stall-append exists, an APPEND the client sends (a command line
whose second word is APPEND, any case) goes on to Dovecot at once, its
literal too, so the message is appended; but Dovecot's tagged answer to it
(the line starting with that tag) is held back for the seconds the file
holds (default 10), and with it whatever Dovecot sends after it;
continuation requests ("+ ...") before it pass at once. A test sees the
message in the folder while the client still waits for the answer (and can
kill the client then: the proxy drops the held answer and the connection to
Dovecot). The file is looked at when the APPEND passes. The proxy reads both
directions line by line, copying the bytes of each literal announced at a
line's end ({n}, {n+}) raw, so a message's text is never taken for a
command or an answer; after a {n} it waits for Dovecot's "+" (or its
refusal, after which the client sends no bytes).

Certificates: DIR/ca.pem is a throwaway CA. It signs the certificate of
every port (localhost and 127.0.0.1), except imaps_wrong_cert_port's, which
it signs for wrong.example only.

SMTP (both ports): AUTH PLAIN or LOGIN against DIR/users, required before
MAIL; on submission_starttls_port only after STARTTLS. Recipients must be
users @example.test (others: 550). Each accepted message is delivered
through Dovecot's LMTP and kept as DIR/smtp-log/NNNN.eml. While the file
DIR/faults/drop-after-data exists, the server delivers and records the
message after DATA but then drops the connection instead of answering 250.
While DIR/faults/stall-after-data exists, the server delivers and records
the message, then waits the seconds the file holds (default 10) before it
answers (a client killed meanwhile cannot know the message was taken).

DIR holds ca.pem, tls/ (server certificates and keys), users (Dovecot's
passwd-file), dovecot.conf, dovecot.log, mail/USER/Maildir, smtp-log/ and
faults/. One instance a directory; Dovecot's unprivileged processes must be
able to reach it, so its parents must be searchable by others (the script
makes DIR itself 0755).

Needs root (Dovecot switches to its users dovecot and dovenull), Debian's
dovecot-imapd and dovecot-lmtpd, and Python's aiosmtpd:
scripts/install-test-tools.sh installs them.
"""

import argparse
import asyncio
import contextlib
import fcntl
import grp
import imaplib
import json
import logging
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:  # reported with the other missing tools
    SMTP = None
# aiosmtpd 1.4 itself sets the attribute it warns about, at each login.
logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())

HERE = Path(__file__).resolve().parent
INSTALL_HINT = "scripts/install-test-tools.sh installs it"

DOMAIN = "example.test"
USERS = {"alice@example.test": "secret-alice", "bob@example.test": "secret-bob"}
NO_DRAFTS_USER, NO_DRAFTS_PASSWORD = "nodrafts@example.test", "secret-nodrafts"
# A userdb field overrides that one setting for that user alone: Dovecot
# then never creates the Drafts folder (special_use is only a name's
# attribute, so nothing Drafts-like is listed).
NO_DRAFTS_FIELD = "userdb_namespace/inbox/mailbox/Drafts/auto=no"
MAIL_USER = "dovecot"  # owns the mail; an existing user of Debian's package

READY_TIMEOUT = 10.0
# Unix sockets are limited to 107 bytes and Dovecot's longest name under
# base_dir is about 25.
MAX_BASE_DIR = 80


class SetupError(Exception):
    """Why the servers cannot start, said as it is."""


class CommandError(Exception):
    """Why a stdin command failed, answered as its error."""


# --- files -----------------------------------------------------------------


def find_program(name):
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise SetupError(f"{name} is not installed; {INSTALL_HINT}")
    return found


def make_certificates(d: Path) -> None:
    """The CA (d/ca.pem) and the two server certificates it signs."""
    tls = d / "tls"
    # EC keys: generating them takes milliseconds, RSA keys a tenth of a
    # second each.
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3650"]
    runs = [["-keyout", tls / "ca.key", "-out", d / "ca.pem", "-subj", "/CN=Mailwright test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"]]
    for name, cn, san in (("localhost", "localhost", "DNS:localhost,IP:127.0.0.1"),
                          ("wrong", "wrong.example", "DNS:wrong.example")):
        runs.append(["-CA", d / "ca.pem", "-CAkey", tls / "ca.key",
                     "-keyout", tls / f"{name}.key", "-out", tls / f"{name}.pem", "-subj", f"/CN={cn}",
                     "-addext", "basicConstraints=critical,CA:FALSE",
                     "-addext", "keyUsage=critical,digitalSignature",
                     "-addext", "extendedKeyUsage=serverAuth",
                     "-addext", f"subjectAltName={san}"])
    openssl = find_program("openssl")
    for args in runs:
        done = subprocess.run([openssl, "req", "-x509", *new_key, *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise SetupError(f"openssl req failed: {done.stderr.strip()}")


def read_users(path: Path) -> dict:
    """The passwd-file as {user: [password field, other fields...]}."""
    users = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        users[name] = rest.split(":")
    return users


def password_of(fields) -> str:
    return fields[0].removeprefix("{PLAIN}")


def write_users(path: Path, users: dict) -> None:
    """Replace the passwd-file at once, with a modification time Dovecot sees
    as new: it reloads the file only when the size or the mtime, in whole
    seconds, changed."""
    mtime = int(time.time())
    with contextlib.suppress(FileNotFoundError):
        mtime = max(mtime, int(path.stat().st_mtime) + 1)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{name}:{':'.join(fields)}\n" for name, fields in users.items()))
    # Read by Dovecot's auth process, which runs as the dovecot user.
    os.chown(tmp, 0, grp.getgrnam(MAIL_USER).gr_gid)
    tmp.chmod(0o640)
    os.utime(tmp, (mtime, mtime))
    tmp.replace(path)


def check_reachable(d: Path, uid: int) -> None:
    """Dovecot's unprivileged processes must get through every directory
    above d; a private temporary directory (mode 0700) would stop them with
    errors that show only at the first login."""
    for parent in d.parents:
        st = parent.stat()
        if not st.st_mode & 0o001 and st.st_uid != uid:
            raise SetupError(f"{parent} (mode {st.st_mode & 0o777:o}) cannot be searched by the user "
                             f"{MAIL_USER}, which Dovecot's processes need in order to reach {d}; "
                             "use a directory whose parents are searchable by others (o+x)")


def listening_socket(host="127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen(128)
    return sock


def dovecot_sockets() -> dict:
    """Dovecot's listening sockets, on distinct ports. Dovecot matches a
    socket handed over systemd-style to its listener by port alone, not by
    address: a 127.0.0.2 socket that happened to get the port of a 127.0.0.1
    one would be taken by both listeners, and Dovecot panics at start
    ("io_add(0x1) called twice")."""
    sockets = {"imaps": listening_socket(), "imap_starttls": listening_socket()}
    taken = {s.getsockname()[1] for s in sockets.values()}
    while True:
        backend = listening_socket("127.0.0.2")
        if backend.getsockname()[1] not in taken:
            sockets["imaps_wrong_cert_backend"] = backend
            return sockets
        backend.close()


def crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


def header_values(fetched: str) -> list:
    """doveadm's hdr.NAME: each occurrence on a line of its own, folded
    lines (starting with a space or tab) included."""
    return [re.sub(r"\r?\n[ \t]+", " ", value).strip() for value in re.split(r"\r?\n(?![ \t])", fetched)]


def lmtp_deliver(lmtp_path: Path, sender: str, recipients, raw: bytes) -> None:
    with smtplib.LMTP(str(lmtp_path)) as lmtp:
        for rcpt in recipients:
            # One recipient per transaction: LMTP answers DATA once for each
            # recipient, and smtplib reads a single answer.
            lmtp.sendmail(sender, [rcpt], raw)


# --- Dovecot ---------------------------------------------------------------


def group_members(pgid: int) -> set:
    """Pids of the live (not zombie) processes in a process group."""
    members = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.add(int(entry.name))
    return members


class Dovecot:
    """One Dovecot instance on listening sockets that this process holds.

    Dovecot takes them over at each start as systemd's socket activation
    would pass them (LISTEN_FDS, from fd 3 on), so a restart keeps the
    ports, and no other program can take them while it is down."""

    def __init__(self, d: Path, sockets: dict):
        self.dir = d
        self.conf = d / "dovecot.conf"
        self.lmtp = d / "run" / "lmtp"
        self.sockets = sockets
        # Copies at fd 10 or above, so that moving them to fds 3, 4, ... in
        # the child overwrites none of them.
        self.fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 10) for s in sockets.values()]
        self.proc = None

    def write_config(self) -> None:
        mail = pwd.getpwnam(MAIL_USER)
        ports = {f"{name}_port": s.getsockname()[1] for name, s in self.sockets.items()}
        template = string.Template((HERE / "dovecot.conf.template").read_text())
        self.conf.write_text(template.substitute(
            dir=self.dir, instance_name=f"mailwright-test-{os.getpid()}",
            mail_user=MAIL_USER, mail_group=grp.getgrgid(mail.pw_gid).gr_name,
            mail_uid=mail.pw_uid, mail_gid=mail.pw_gid, **ports))

    async def start(self) -> None:
        # Left by a killed master: its pid file, which could name a live
        # process by now (Dovecot would refuse to start), and the lock of its
        # instance list (Dovecot would wait 10 s for it).
        (self.dir / "run" / "master.pid").unlink(missing_ok=True)
        (self.dir / "state" / "instances.lock").unlink(missing_ok=True)
        moves = " ".join(f"{3 + i}<&{fd} {fd}<&-" for i, fd in enumerate(self.fds))
        # bash: dash cannot name fds above 9. LISTEN_PID must be Dovecot's
        # pid, which exec keeps. setpriv: Dovecot gets SIGTERM should this
        # process die without stopping it (SIGKILL).
        script = f'exec {moves}; export LISTEN_PID=$$; exec setpriv --pdeathsig TERM "$@"'
        dovecot = find_program("dovecot")
        with open(self.dir / "dovecot.out", "ab") as out:
            # Started from the main thread, as the parent-death signal
            # follows the thread that forked. A new session: each process of
            # the instance is in the group whose id is the master's pid.
            self.proc = subprocess.Popen(
                ["bash", "-c", script, "bash", dovecot, "-F", "-c", str(self.conf)],
                pass_fds=self.fds, env=dict(os.environ, LISTEN_FDS=str(len(self.fds))),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        await self.wait_ready()

    async def wait_ready(self) -> None:
        """Until IMAP and LMTP greet. Connecting proves nothing: the kernel
        accepts on the held sockets before Dovecot runs."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        port = self.sockets["imap_starttls"].getsockname()[1]
        while True:
            if self.proc.poll() is not None:
                raise SetupError(f"dovecot exited with status {self.proc.returncode} (is it installed as "
                                 f"scripts/install-test-tools.sh installs it?):\n{self.log_tail()}")
            if (await greeting(asyncio.open_connection("127.0.0.1", port))).startswith(b"* OK") and \
                    (await greeting(asyncio.open_unix_connection(self.lmtp))).startswith(b"220 "):
                return
            if loop.time() > deadline:
                raise SetupError(f"dovecot did not greet within {READY_TIMEOUT:.0f} s:\n{self.log_tail()}")
            await asyncio.sleep(0.02)

    def log_tail(self) -> str:
        lines = []
        for name in ("dovecot.out", "dovecot.log"):
            with contextlib.suppress(FileNotFoundError):
                lines += (self.dir / name).read_text(errors="replace").splitlines()[-15:]
        return "\n".join(lines)

    async def stop(self) -> None:
        """Stop every process of the instance, and with them every IMAP
        connection."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        # The children end within milliseconds; the master would linger for
        # a second more with nothing left to do, so it is killed.
        for _ in range(100):
            if not group_members(pgid) - {pgid}:
                break
            await asyncio.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        # Reaped last, so that its pid (the group's id) is not reused while
        # the group is watched.
        while group_members(pgid):
            await asyncio.sleep(0.01)
        self.proc.wait()
        self.proc = None

    async def doveadm(self, *args) -> str:
        proc = await asyncio.create_subprocess_exec(
            find_program("doveadm"), "-c", str(self.conf), *args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await proc.communicate()
        if proc.returncode != 0:
            error = err.decode(errors="replace").strip()
            raise CommandError(error or f"doveadm exited with {proc.returncode}")
        return out.decode(errors="replace")


async def greeting(connecting) -> bytes:
    """The first line a server sends, or b"" if there is none within 0.5 s."""
    writer = None
    try:
        async with asyncio.timeout(0.5):
            reader, writer = await connecting
            return await reader.readline()
    except (OSError, TimeoutError):
        return b""
    finally:
        if writer is not None:
            writer.close()


# --- SMTP ------------------------------------------------------------------


class Submission:
    """aiosmtpd handler: authenticated submission to local users, delivered
    through Dovecot's LMTP."""

    def __init__(self, servers: "MailServers"):
        self.servers = servers

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        # Read on each attempt, so that a changed password counts at once.
        users = read_users(self.servers.users)
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode(errors="replace").lower()
            if login in users and password_of(users[login]) == auth_data.password.decode(errors="replace"):
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)  # aiosmtpd answers 535

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        rcpt = address.lower()
        if rcpt.rpartition("@")[2] != DOMAIN:
            return "550 5.7.1 Relaying denied"
        if rcpt not in read_users(self.servers.users):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(rcpt)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        try:
            await asyncio.to_thread(lmtp_deliver, self.servers.dovecot.lmtp, envelope.mail_from,
                                    envelope.rcpt_tos, raw)
        except (OSError, smtplib.SMTPException) as error:
            return f"451 4.3.0 Local delivery failed: {error}"
        self.servers.record(raw)
        stall = self.servers.dir / "faults" / "stall-after-data"
        if stall.exists():
            # Delivered, and the reply held back: a client killed meanwhile
            # cannot know whether the message was taken. The file holds the
            # seconds to wait.
            seconds = float(stall.read_text().strip() or "10")
            await asyncio.sleep(seconds)
        if (self.servers.dir / "faults" / "drop-after-data").exists():
            server.transport.abort()
            # aiosmtpd cancels this handler when it sees the connection
            # lost, before any reply is written.
            await asyncio.Event().wait()
        return "250 2.0.0 Delivered"


# --- the whole ---------------------------------------------------------------


def quiet_on_shutdown(handle):
    """A connection handler for asyncio.start_server that ends normally when
    cancelled: asyncio.run cancels the connections still open at exit, and
    Python 3.11's start_server then prints a traceback for each cancelled
    handler."""
    async def run(reader, writer):
        with contextlib.suppress(asyncio.CancelledError):
            await handle(reader, writer)
    return run


async def relay(reader, writer, backend_port: int) -> None:
    """One connection to the wrong-certificate port, passed unchanged (TLS
    included) to Dovecot's listener on 127.0.0.2."""
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.2", backend_port)
    except OSError:
        writer.close()
        return

    async def pipe(src, dst):
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            dst.close()

    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# A literal announced at the end of an IMAP line: {n} (synchronizing), {n+}
# (LITERAL+), also as ~{n} (BINARY).
LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}\r?\n\Z")
# The longest line the proxy reads (IMAP has no limit; UID sets and SEARCH
# answers can be long).
PROXY_LINE_LIMIT = 16 * 1024 * 1024
DEFAULT_STALL_SECONDS = 10.0


def literal_at_end(line: bytes):
    """(size, synchronizing) of the literal that line announces, or None."""
    found = LITERAL_AT_END.search(line)
    return (int(found.group(1)), not found.group(2)) if found else None


def stall_seconds(path: Path):
    """The seconds a fault file holds (empty: the default), or None if it
    does not exist."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    try:
        return float(text) if text else DEFAULT_STALL_SECONDS
    except ValueError:
        return DEFAULT_STALL_SECONDS


class ProxySession:
    """One connection through the stalling IMAP proxy: the client's TLS
    connection and a plaintext one to Dovecot, copied both ways line by line,
    with literals copied raw."""

    def __init__(self, fault: Path, live: set):
        self.fault = fault
        # The sessions open: the event loop holds its tasks only weakly, and
        # close() ends them.
        self.live = live
        self.task = None
        self.pumps = []
        # Tags of APPENDs sent while the fault file existed: the seconds
        # their tagged answer is held.
        self.stalled = {}
        # While the client's command waits for "+" before the bytes of a
        # synchronizing literal: that command's tag, and the future the
        # server side resolves with True ("+": the bytes follow) or False (the
        # command was answered instead: the client sends no bytes).
        self.literal_tag = None
        self.literal_go = None

    async def run(self, reader, writer, backend_port: int) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port,
                                                                 limit=PROXY_LINE_LIMIT)
        except OSError:
            writer.close()
            return
        self.task = asyncio.current_task()
        self.pumps = [asyncio.create_task(self.client_to_server(reader, up_writer)),
                      asyncio.create_task(self.server_to_client(up_reader, writer))]
        self.live.add(self)
        try:
            # Either side's end ends both (a killed client: Dovecot sees its
            # connection close, a held answer is dropped).
            await asyncio.wait(self.pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.end()
            await asyncio.gather(*self.pumps, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
            self.live.discard(self)

    def end(self) -> None:
        for pump in self.pumps:
            pump.cancel()

    @staticmethod
    async def copy_raw(src, dst, size: int) -> bool:
        """Copy size bytes; False at a premature end."""
        while size:
            chunk = await src.read(min(size, 65536))
            if not chunk:
                return False
            dst.write(chunk)
            await dst.drain()
            size -= len(chunk)
        return True

    async def client_to_server(self, src, dst) -> None:
        with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
            continued = False  # this line continues a command, after a literal
            tag = None
            while line := await src.readline():
                if not continued:
                    words = line.split(None, 2)
                    tag = words[0] if words else None
                    if len(words) >= 2 and words[1].upper() == b"APPEND":
                        # Recorded before the command goes on, so the answer
                        # cannot overtake it.
                        seconds = stall_seconds(self.fault)
                        if seconds is not None:
                            self.stalled[tag] = seconds
                literal = literal_at_end(line)
                go = None
                if literal is not None and literal[1]:
                    go = self.literal_go = asyncio.get_running_loop().create_future()
                    self.literal_tag = tag
                dst.write(line)
                await dst.drain()
                if literal is None:
                    continued = False
                    continue
                if go is not None:
                    proceed = await go
                    self.literal_go = self.literal_tag = None
                    if not proceed:
                        continued = False
                        continue
                if not await self.copy_raw(src, dst, literal[0]):
                    return
                continued = True

    async def server_to_client(self, src, dst) -> None:
        with contextlib.suppress(OSError, ValueError, asyncio.IncompleteReadError):
            continued = False
            while line := await src.readline():
                if not continued:
                    go = self.literal_go
                    tag, space, _ = line.partition(b" ")
                    if go is not None and not go.done():
                        if line.startswith(b"+"):
                            go.set_result(True)
                        elif space and tag == self.literal_tag:
                            go.set_result(False)
                    if space and tag in self.stalled:
                        await asyncio.sleep(self.stalled.pop(tag))
                dst.write(line)
                await dst.drain()
                literal = literal_at_end(line)
                if literal is None:
                    continued = False
                    continue
                if not await self.copy_raw(src, dst, literal[0]):
                    return
                continued = True


class MailServers:
    """The whole instance: Dovecot, the SMTP servers, the relay, the stalling
    proxy, and the commands."""

    def __init__(self, d: Path, no_drafts: bool):
        self.dir = d
        self.users = d / "users"
        self.no_drafts = no_drafts
        self.dovecot = None
        self.servers = []
        self.proxy_sessions = set()
        self.recorded = 0

    async def start(self) -> dict:
        for program in ("dovecot", "doveadm", "openssl", "setpriv", "bash"):
            find_program(program)
        if SMTP is None:
            raise SetupError(f"the Python package aiosmtpd is missing; {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise SetupError("must run as root: Dovecot switches to its users dovecot and dovenull")
        try:
            mail = pwd.getpwnam(MAIL_USER)
        except KeyError:
            raise SetupError(f"no user {MAIL_USER}: is Dovecot installed? {INSTALL_HINT}") from None
        if len(str(self.dir / "run")) > MAX_BASE_DIR:
            raise SetupError(f"{self.dir} is too long a path for Dovecot's unix sockets; "
                             f"keep it under {MAX_BASE_DIR - 4} characters")

        for sub in ("tls", "run", "state", "mail", "smtp-log", "faults"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        check_reachable(self.dir, mail.pw_uid)
        os.chown(self.dir / "mail", mail.pw_uid, mail.pw_gid)
        (self.dir / "mail").chmod(0o700)
        self.recorded = len(list((self.dir / "smtp-log").glob("*.eml")))
        make_certificates(self.dir)

        users = {name: ["{PLAIN}" + password] + [""] * 6 for name, password in USERS.items()}
        if self.no_drafts:
            # passwd-file: user:password:uid:gid:gecos:home:shell:extra
            users[NO_DRAFTS_USER] = ["{PLAIN}" + NO_DRAFTS_PASSWORD] + [""] * 5 + [NO_DRAFTS_FIELD]
        write_users(self.users, users)

        front = {name: listening_socket() for name in
                 ("imaps_wrong_cert", "imaps_proxy", "smtps", "submission_starttls")}
        self.dovecot = Dovecot(self.dir, dovecot_sockets())
        self.dovecot.write_config()
        await self.dovecot.start()

        loop = asyncio.get_running_loop()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.dir / "tls" / "localhost.pem", self.dir / "tls" / "localhost.key")
        handler = Submission(self)

        def smtp(starttls):
            # aiosmtpd counts only STARTTLS as TLS: on the implicit-TLS port
            # AUTH must not wait for it.
            return lambda: SMTP(handler, hostname="localhost", authenticator=handler.authenticate,
                                enable_SMTPUTF8=True, loop=loop, tls_context=tls if starttls else None,
                                require_starttls=starttls, auth_require_tls=starttls)

        backend_port = self.dovecot.sockets["imaps_wrong_cert_backend"].getsockname()[1]
        plain_port = self.dovecot.sockets["imap_starttls"].getsockname()[1]
        stall_append = self.dir / "faults" / "stall-append"

        def proxy_session(reader, writer):
            return ProxySession(stall_append, self.proxy_sessions).run(reader, writer, plain_port)

        self.servers = [
            await loop.create_server(smtp(True), sock=front["submission_starttls"]),
            await loop.create_server(smtp(False), sock=front["smtps"], ssl=tls),
            await asyncio.start_server(quiet_on_shutdown(lambda r, w: relay(r, w, backend_port)),
                                       sock=front["imaps_wrong_cert"]),
            await asyncio.start_server(quiet_on_shutdown(proxy_session), sock=front["imaps_proxy"], ssl=tls,
                                       limit=PROXY_LINE_LIMIT),
        ]
        return {
            "imaps_port": self.dovecot.sockets["imaps"].getsockname()[1],
            "imap_starttls_port": self.dovecot.sockets["imap_starttls"].getsockname()[1],
            "imaps_wrong_cert_port": front["imaps_wrong_cert"].getsockname()[1],
            "imaps_proxy_port": front["imaps_proxy"].getsockname()[1],
            "smtps_port": front["smtps"].getsockname()[1],
            "submission_starttls_port": front["submission_starttls"].getsockname()[1],
            "ca": str(self.dir / "ca.pem"),
            "dir": str(self.dir),
            "dovecot_pid": self.dovecot.proc.pid,
        }

    def record(self, raw: bytes) -> None:
        self.recorded += 1
        path = self.dir / "smtp-log" / f"{self.recorded:04d}.eml"
        # Renamed into place: a test polling the directory sees whole files.
        path.with_suffix(".tmp").write_bytes(raw)
        path.with_suffix(".tmp").replace(path)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        if self.dovecot is not None:
            await self.dovecot.stop()
        # Sessions that Dovecot's stop did not end (an answer held back by
        # stall-append).
        sessions = list(self.proxy_sessions)
        for session in sessions:
            session.end()
        if sessions:
            await asyncio.wait([session.task for session in sessions], timeout=5)

    async def command(self, line: str) -> dict:
        name, _, args = line.strip().partition(" ")
        try:
            if name == "password":
                user, new = self.split(args, 2)
                await self.set_password(user, new)
            elif name == "restart-dovecot":
                self.split(args, 0)
                await self.dovecot.stop()
                await self.dovecot.start()
                return {"ok": True, "dovecot_pid": self.dovecot.proc.pid}
            elif name == "deliver":
                user, path = self.split(args, 2)
                raw = crlf(Path(path).read_bytes())
                await asyncio.to_thread(lmtp_deliver, self.dovecot.lmtp, "", [user], raw)
            elif name == "count":
                return {"ok": True, "count": await self.count(*self.split(args, 4))}
            elif name == "reset-uidvalidity":
                (user,) = self.split(args, 1)
                uidvalidity = await self.reset_uidvalidity(user)
                return {"ok": True, "uidvalidity": uidvalidity, "dovecot_pid": self.dovecot.proc.pid}
            else:
                raise CommandError(f"unknown command {name!r}")
        except CommandError as error:
            return {"ok": False, "error": str(error)}
        except Exception as error:  # whatever it is, the test reads it and the servers go on
            return {"ok": False, "error": f"{type(error).__name__}: {error}"}
        return {"ok": True}

    @staticmethod
    def split(args: str, count: int) -> list:
        parts = args.split(maxsplit=count - 1) if count else args.split()
        if len(parts) != count:
            raise CommandError(f"expected {count} arguments, got {len(parts)}")
        return parts

    async def set_password(self, user: str, new: str) -> None:
        if ":" in new:
            raise CommandError("a password cannot hold ':' (the passwd-file separator)")
        users = read_users(self.users)
        if user not in users:
            raise CommandError(f"no user {user}")
        users[user][0] = "{PLAIN}" + new
        written = time.time()
        write_users(self.users, users)
        # Dovecot's auth process looks at the file at most once a second (per
        # second of its clock): answer only once a later second has begun, so
        # that the very next login sees the new password.
        await asyncio.sleep(int(written) + 1 - time.time())

    def inbox_status(self, user: str) -> tuple:
        """(UIDVALIDITY, MESSAGES) of user's INBOX, as an IMAP client sees
        them (on the plaintext port: Dovecot trusts 127.0.0.1)."""
        users = read_users(self.users)
        if user not in users:
            raise CommandError(f"no user {user}")
        port = self.dovecot.sockets["imap_starttls"].getsockname()[1]
        with imaplib.IMAP4("127.0.0.1", port, timeout=10) as imap:
            imap.login(user, password_of(users[user]))
            typ, data = imap.status("INBOX", "(UIDVALIDITY MESSAGES)")
            if typ != "OK":
                raise CommandError(f"STATUS INBOX: {typ} {data}")
        status = data[0].decode(errors="replace")
        uidvalidity = re.search(r"UIDVALIDITY (\d+)", status)
        messages = re.search(r"MESSAGES (\d+)", status)
        if not uidvalidity or not messages:
            raise CommandError(f"unexpected STATUS answer {status!r}")
        return int(uidvalidity.group(1)), int(messages.group(1))

    async def reset_uidvalidity(self, user: str) -> int:
        """Give user's INBOX a new UIDVALIDITY, keeping its messages: with
        Dovecot stopped, delete the INBOX's UID list and indexes (Maildir's
        INBOX is its root; the other folders' files, in its subdirectories,
        stay) and the mailbox list index that caches them; the new value
        (as STATUS shows it)."""
        users = read_users(self.users)
        if user not in users:
            raise CommandError(f"no user {user}")
        before, messages = await asyncio.to_thread(self.inbox_status, user)
        maildir = self.dir / "mail" / user / "Maildir"
        for _ in range(3):
            await self.dovecot.stop()
            for pattern in ("dovecot-uidlist", "dovecot-uidlist.lock", "dovecot.index*",
                            "dovecot.list.index*"):
                for path in maildir.glob(pattern):
                    path.unlink(missing_ok=True)
            await self.dovecot.start()
            after, messages_after = await asyncio.to_thread(self.inbox_status, user)
            if messages_after != messages:
                raise CommandError(f"INBOX held {messages} messages, now {messages_after}")
            if after != before:
                return after
            # Not expected: Dovecot counts on from the user's last value
            # (Maildir/dovecot-uidvalidity). Without that file it would take
            # the time: try again in the next second.
            await asyncio.sleep(1.05 - time.time() % 1)
        raise CommandError(f"UIDVALIDITY stayed {before}")

    async def count(self, user: str, mailbox: str, header: str, value: str) -> int:
        # The search matches substrings, case-insensitively; the fetched
        # values are then compared exactly. Search first: unlike fetch, it
        # fails for a mailbox that does not exist.
        query = ["mailbox", mailbox, "header", header, value]
        if not (await self.dovecot.doveadm("search", "-u", user, *query)).strip():
            return 0
        out = await self.dovecot.doveadm("-f", "json", "fetch", "-u", user, f"hdr.{header}", *query)
        return sum(1 for row in json.loads(out) if value in header_values(*row.values()))


def stdin_lines(loop) -> asyncio.Queue:
    """stdin's lines, then None at its end. Read by a thread with os.read,
    which works whatever stdin is (pipe, file, terminal) and holds no lock
    that would stop the interpreter from exiting."""
    queue = asyncio.Queue()

    def read():
        pending = b""
        with contextlib.suppress(OSError, RuntimeError):  # RuntimeError: loop closed
            while chunk := os.read(0, 65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    loop.call_soon_threadsafe(queue.put_nowait, line.decode(errors="replace"))
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return queue


async def serve(d: Path, no_drafts: bool) -> int:
    servers = MailServers(d, no_drafts)
    try:
        try:
            info = await servers.start()
        except SetupError as error:
            print(f"mailservers: {error}", file=sys.stderr)
            return 1
        print(json.dumps(info), flush=True)

        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)

        async def commands():
            lines = stdin_lines(loop)
            while (line := await lines.get()) is not None:
                if line.strip():
                    print(json.dumps(await servers.command(line)), flush=True)

        tasks = [asyncio.create_task(commands()), asyncio.create_task(stopping.wait())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        return 0
    finally:
        await servers.close()


# --- self-test ---------------------------------------------------------------


class Instance:
    """A running copy of this script, driven as a test would drive it."""

    def __init__(self, d: Path, *flags):
        self.dir = d
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, __file__, "--dir", str(d), *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = None
        self.startup = None

    def wait_ready(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited with {self.proc.wait()} before printing its ports")
        self.info = json.loads(line)
        self.startup = time.monotonic() - self.started
        return self.info

    def command(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def port(self, name: str) -> int:
        return self.info[f"{name}_port"]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.info["ca"])

    def imaps(self, user=None, password=None) -> imaplib.IMAP4_SSL:
        imap = imaplib.IMAP4_SSL("localhost", self.port("imaps"), ssl_context=self.tls(), timeout=10)
        if user:
            imap.login(user, password)
        return imap

    def proxy(self, user=None, password=None) -> imaplib.IMAP4_SSL:
        """A client of the stalling proxy, the CA verifying its certificate."""
        imap = imaplib.IMAP4_SSL("localhost", self.port("imaps_proxy"), ssl_context=self.tls(), timeout=10)
        if user:
            imap.login(user, password)
        return imap

    def count(self, user, mailbox, header, value) -> int:
        answer = self.command(f"count {user} {mailbox} {header} {value}")
        assert answer["ok"], answer
        return answer["count"]


def message(sender: str, rcpt: str, test_id: str) -> bytes:
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: self-test {test_id}\r\n"
            f"Message-ID: <{test_id}@example.test>\r\nX-Test-Id: {test_id}\r\n\r\nHello.\r\n").encode()


def idle(imap) -> None:
    imap.select("INBOX")
    imap.send(b"I1 IDLE\r\n")
    line = imap.readline()
    assert line.startswith(b"+"), line


def wait_exists(imap, timeout=5.0) -> None:
    imap.sock.settimeout(timeout)
    while b"EXISTS" not in (line := imap.readline()):
        assert line, "connection closed during IDLE"


def idle_done(imap) -> None:
    imap.send(b"DONE\r\n")
    while not (line := imap.readline()).startswith(b"I1 "):
        assert line, "connection closed"
    assert line.startswith(b"I1 OK"), line


def read_until_tagged(imap, tag: bytes) -> tuple:
    """Read answers up to tag's tagged line, literals skipped raw (a message
    may hold lines that look tagged); (that line, the seconds it took)."""
    began = time.monotonic()
    while True:
        line = imap.readline()
        assert line, "connection closed"
        if line.startswith(tag + b" "):
            return line, time.monotonic() - began
        literal = literal_at_end(line)
        if literal is not None:
            imap.read(literal[0])


def inbox_status(imap) -> tuple:
    """(UIDVALIDITY, MESSAGES) of the INBOX."""
    typ, data = imap.status("INBOX", "(UIDVALIDITY MESSAGES)")
    assert typ == "OK", data
    uidvalidity, messages = (re.search(rb"%s (\d+)" % name, data[0]) for name in (b"UIDVALIDITY", b"MESSAGES"))
    assert uidvalidity and messages, data
    return int(uidvalidity.group(1)), int(messages.group(1))


def login_fails(imap, user, password) -> None:
    try:
        imap.login(user, password)
    except imaplib.IMAP4.error as error:
        assert "[AUTHENTICATIONFAILED]" in str(error), error
    else:
        raise AssertionError(f"{user} logged in with {password!r}")


def list_special_use(imap) -> dict:
    """{mailbox name: its attributes} from LIST "" "*" RETURN (SPECIAL-USE),
    which imaplib's list() cannot send."""
    typ, data = imap._simple_command("LIST", '""', '"*"', "RETURN", "(SPECIAL-USE)")
    assert typ == "OK", data
    listed = {}
    for line in imap.untagged_responses.pop("LIST", []):
        attrs, _, rest = line.decode().partition(") ")
        listed[rest.split(" ", 1)[1].strip('"')] = set(attrs.lstrip("(").split())
    return listed


def smtp_starttls(inst, user, password) -> smtplib.SMTP:
    smtp = smtplib.SMTP("localhost", inst.port("submission_starttls"), timeout=10)
    smtp.starttls(context=inst.tls())
    smtp.login(user, password)
    return smtp


def smtp_code(call) -> int:
    try:
        call()
    except smtplib.SMTPResponseException as error:
        return error.smtp_code
    except smtplib.SMTPRecipientsRefused as error:
        return next(iter(error.recipients.values()))[0]
    return 250


def self_test() -> int:
    results = []

    def check(name):
        def run(fn):
            if results and not results[0]:
                results.append(False)
                print(f"SKIP  {name}: the instances did not start", flush=True)
                return
            began = time.monotonic()
            try:
                fn()
            except Exception as error:  # a failed check is reported, the rest still run
                results.append(False)
                print(f"FAIL  {name}: {type(error).__name__}: {error}", flush=True)
            else:
                results.append(True)
                print(f"PASS  {name} ({time.monotonic() - began:.2f} s)", flush=True)
        return run

    base = Path(tempfile.mkdtemp(prefix="mailservers-"))
    base.chmod(0o755)  # Dovecot's processes must get through it
    a = Instance(base / "a", "--no-drafts")
    b = Instance(base / "b")
    alice, bob = "alice@example.test", "bob@example.test"
    try:
        @check("two instances start at once, on their own ports")
        def _():
            ia, ib = a.wait_ready(), b.wait_ready()
            assert set(ia) == {"imaps_port", "imap_starttls_port", "imaps_wrong_cert_port", "imaps_proxy_port",
                               "smtps_port", "submission_starttls_port", "ca", "dir", "dovecot_pid"}, ia
            ports = [v for info in (ia, ib) for k, v in info.items() if k.endswith("_port")]
            assert len(set(ports)) == len(ports) == 12, ports
            print(f"      startup: {a.startup:.2f} s and {b.startup:.2f} s (two at once)")

        @check("IMAPS login; LIST RETURN (SPECIAL-USE) shows the four folders, subscribed")
        def _():
            imap = a.imaps(alice, USERS[alice])
            listed = list_special_use(imap)
            for folder in ("Drafts", "Sent", "Trash", "Junk"):
                assert "\\" + folder in listed.get(folder, ()), listed
            typ, subscribed = imap.lsub()
            for folder in ("Drafts", "Sent", "Trash", "Junk"):
                assert any(line.endswith(folder.encode()) for line in subscribed), subscribed
            assert b"IDLE" in imap.capability()[1][0]
            imap.logout()

        @check("IMAP STARTTLS login")
        def _():
            imap = imaplib.IMAP4("localhost", a.port("imap_starttls"), timeout=10)
            assert "STARTTLS" in imap.capabilities
            imap.starttls(ssl_context=a.tls())
            imap.login(bob, USERS[bob])
            imap.logout()

        @check("wrong password: NO [AUTHENTICATIONFAILED]")
        def _():
            login_fails(a.imaps(), alice, "not-the-password")

        @check("wrong-certificate port fails hostname verification; same CA, wrong.example")
        def _():
            try:
                imaplib.IMAP4_SSL("localhost", a.port("imaps_wrong_cert"), ssl_context=a.tls(), timeout=10)
            except ssl.SSLCertVerificationError as error:
                assert "Hostname mismatch" in error.verify_message, error
            else:
                raise AssertionError("the handshake succeeded")
            lax = a.tls()
            lax.check_hostname = False
            imap = imaplib.IMAP4_SSL("localhost", a.port("imaps_wrong_cert"), ssl_context=lax, timeout=10)
            assert imap.sock.getpeercert()["subjectAltName"] == (("DNS", "wrong.example"),)
            imap.login(bob, USERS[bob])  # a real IMAP server behind it
            imap.logout()

        @check("deliver: an IDLE client is notified; count finds it")
        def _():
            imap = a.imaps(alice, USERS[alice])
            idle(imap)
            raw = a.dir / "deliver-1.eml"
            raw.write_bytes(message("carol@elsewhere.test", alice, "deliver-1").replace(b"\r\n", b"\n"))
            assert a.command(f"deliver {alice} {raw}") == {"ok": True}
            wait_exists(imap)
            idle_done(imap)
            imap.logout()
            assert a.count(alice, "INBOX", "X-Test-Id", "deliver-1") == 1
            assert a.count(alice, "INBOX", "X-Test-Id", "deliver") == 0  # exact, not a substring

        @check("SMTP STARTTLS + AUTH PLAIN: delivered (IDLE notified), logged in smtp-log")
        def _():
            imap = a.imaps(alice, USERS[alice])
            idle(imap)
            raw = message(bob, alice, "submission-1")
            with smtp_starttls(a, bob, USERS[bob]) as smtp:
                smtp.sendmail(bob, [alice], raw)
            wait_exists(imap)
            idle_done(imap)
            imap.logout()
            logged = sorted((a.dir / "smtp-log").glob("*.eml"))
            assert [p.name for p in logged] == ["0001.eml"], logged
            assert logged[0].read_bytes() == raw
            assert a.count(alice, "INBOX", "X-Test-Id", "submission-1") == 1

        @check("SMTP implicit TLS + AUTH LOGIN: delivered (IDLE notified)")
        def _():
            imap = a.imaps(bob, USERS[bob])
            idle(imap)
            with smtplib.SMTP_SSL("localhost", a.port("smtps"), context=a.tls(), timeout=10) as smtp:
                smtp.ehlo()
                smtp.user, smtp.password = alice, USERS[alice]
                code, _ = smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
                assert code == 235, code
                smtp.sendmail(alice, [bob], message(alice, bob, "smtps-1"))
            wait_exists(imap)
            idle_done(imap)
            imap.logout()
            assert a.count(bob, "INBOX", "X-Test-Id", "smtps-1") == 1

        @check("imaps proxy: TLS verified with the CA; IDLE notified of a delivery; FETCH of the message")
        def _():
            imap = a.proxy(alice, USERS[alice])
            assert imap.sock.getpeercert()["subjectAltName"] == (("DNS", "localhost"), ("IP Address", "127.0.0.1"))
            idle(imap)
            raw = a.dir / "proxy-idle-1.eml"
            raw.write_bytes(message("carol@elsewhere.test", alice, "proxy-idle-1"))
            assert a.command(f"deliver {alice} {raw}") == {"ok": True}
            wait_exists(imap)
            idle_done(imap)
            typ, found = imap.search(None, "HEADER", "X-Test-Id", "proxy-idle-1")
            assert typ == "OK" and len(found[0].split()) == 1, found
            typ, fetched = imap.fetch(found[0], "(BODY.PEEK[])")
            # After the headers LMTP adds: the message byte for byte.
            assert typ == "OK" and fetched[0][1].endswith(
                message("carol@elsewhere.test", alice, "proxy-idle-1")), fetched
            # Refused before its "+": the client sends no literal, and the
            # proxy reads the next line as a command.
            typ, answer = imap.append("NoSuchFolder", None, None, message(alice, bob, "refused-1"))
            assert typ == "NO" and b"TRYCREATE" in answer[0], answer
            assert imap.noop()[0] == "OK"
            imap.logout()

        @check("stall-append: the draft is in Drafts while APPEND waits, OK after the stall; without it at once")
        def _():
            fault = a.dir / "faults" / "stall-append"
            fault.write_text("3\n")
            stalled = {}

            def append():
                imap = a.proxy(alice, USERS[alice])
                began = time.monotonic()
                # imaplib sends a synchronizing literal: the "+" passes at once.
                stalled["answer"] = imap.append("Drafts", "(\\Draft)", None,
                                                message(alice, bob, "stalled-draft-1"))
                stalled["seconds"] = time.monotonic() - began
                imap.logout()

            thread = threading.Thread(target=append)
            thread.start()
            direct = a.imaps(alice, USERS[alice])
            deadline = time.monotonic() + 2.5
            while True:
                direct.select("Drafts", readonly=True)
                typ, found = direct.search(None, "HEADER", "X-Test-Id", "stalled-draft-1")
                if found[0]:
                    break
                assert time.monotonic() < deadline, "the draft did not appear in Drafts"
                time.sleep(0.05)
            assert thread.is_alive() and "answer" not in stalled, stalled
            direct.logout()
            thread.join(timeout=10)
            assert stalled["answer"][0] == "OK", stalled
            assert 2.9 < stalled["seconds"] < 5, stalled
            assert a.count(alice, "Drafts", "X-Test-Id", "stalled-draft-1") == 1
            fault.unlink()
            imap = a.proxy(alice, USERS[alice])
            began = time.monotonic()
            typ, _ = imap.append("Drafts", "(\\Draft)", None, message(alice, bob, "prompt-draft-1"))
            assert typ == "OK" and time.monotonic() - began < 1, time.monotonic() - began
            imap.logout()
            assert a.count(alice, "Drafts", "X-Test-Id", "prompt-draft-1") == 1

        @check("stall-append: bytes of literals, both ways, are never read as commands or answers")
        def _():
            fault = a.dir / "faults" / "stall-append"
            # Lines that would look tagged, and announce literals, were they
            # read as lines.
            body = (b"Subject: literals\r\nX-Test-Id: literal-1\r\n\r\n"
                    b"L1 OK looks like the answer to the APPEND\r\nL2 APPEND Drafts {3}\r\nabc\r\n")
            imap = a.proxy(alice, USERS[alice])
            assert imap.append("Drafts", None, None, body)[0] == "OK"
            imap.select("Drafts")
            typ, found = imap.uid("SEARCH", "HEADER", "X-Test-Id", "literal-1")
            uid = found[0].split()[0]
            fault.write_text("2")
            # At once: a FETCH whose answer holds "L1 OK ..." in a literal,
            # and an APPEND (LITERAL+) tagged L1 whose message holds a line
            # "L2 APPEND ...".
            imap.send(b"F1 UID FETCH " + uid + b" BODY.PEEK[]\r\n"
                      b"L1 APPEND Drafts (\\Draft) {" + str(len(body)).encode() + b"+}\r\n" + body + b"\r\n")
            line, seconds = read_until_tagged(imap, b"F1")
            assert line.startswith(b"F1 OK") and seconds < 1, (line, seconds)
            line, seconds = read_until_tagged(imap, b"L1")
            assert line.startswith(b"L1 OK") and 1.5 < seconds < 4, (line, seconds)
            fault.unlink()
            imap.send(b"L2 NOOP\r\n")
            line, seconds = read_until_tagged(imap, b"L2")
            assert line.startswith(b"L2 OK") and seconds < 1, (line, seconds)
            imap.logout()
            assert a.count(alice, "Drafts", "X-Test-Id", "literal-1") == 2

        @check("SMTP refusals: AUTH before STARTTLS, bad password 535, no AUTH, foreign and unknown recipients 550")
        def _():
            with smtplib.SMTP("localhost", a.port("submission_starttls"), timeout=10) as smtp:
                smtp.ehlo()
                assert not smtp.has_extn("auth")
                assert smtp.docmd("AUTH", "PLAIN")[0] == 530
            with smtplib.SMTP("localhost", a.port("submission_starttls"), timeout=10) as smtp:
                smtp.starttls(context=a.tls())
                assert smtp_code(lambda: smtp.login(bob, "wrong")) == 535
            with smtplib.SMTP_SSL("localhost", a.port("smtps"), context=a.tls(), timeout=10) as smtp:
                assert smtp_code(lambda: smtp.login(bob, "wrong")) == 535
                assert smtp_code(lambda: smtp.sendmail(bob, [alice], b"x")) == 530
            with smtp_starttls(a, bob, USERS[bob]) as smtp:
                assert smtp_code(lambda: smtp.sendmail(bob, ["someone@elsewhere.test"], b"x")) == 550
                assert smtp_code(lambda: smtp.sendmail(bob, ["nobody@example.test"], b"x")) == 550

        @check("drop-after-data: connection closed after DATA, message still delivered")
        def _():
            fault = a.dir / "faults" / "drop-after-data"
            fault.touch()
            with smtp_starttls(a, bob, USERS[bob]) as smtp:
                try:
                    smtp.sendmail(bob, [alice], message(bob, alice, "dropped-1"))
                except smtplib.SMTPServerDisconnected:
                    pass
                else:
                    raise AssertionError("the server answered DATA")
            assert a.count(alice, "INBOX", "X-Test-Id", "dropped-1") == 1
            fault.unlink()
            with smtp_starttls(a, bob, USERS[bob]) as smtp:
                smtp.sendmail(bob, [alice], message(bob, alice, "after-drop-1"))
            assert a.count(alice, "INBOX", "X-Test-Id", "after-drop-1") == 1

        @check("password: the old one fails at once at IMAP and SMTP, the new one works")
        def _():
            a.imaps(alice, USERS[alice]).logout()  # a lookup just before the change
            assert a.command(f"password {alice} changed secret") == {"ok": True}
            login_fails(a.imaps(), alice, USERS[alice])
            a.imaps(alice, "changed secret").logout()
            with smtplib.SMTP_SSL("localhost", a.port("smtps"), context=a.tls(), timeout=10) as smtp:
                assert smtp_code(lambda: smtp.login(alice, USERS[alice])) == 535
                smtp.login(alice, "changed secret")
            assert a.command(f"password {alice} {USERS[alice]}") == {"ok": True}

        @check("--no-drafts: nodrafts@ lists no Drafts-like folder; without the flag no such user")
        def _():
            listed = list_special_use(a.imaps(NO_DRAFTS_USER, NO_DRAFTS_PASSWORD))
            drafty = [name for name, attrs in listed.items() if "draft" in name.lower() or "\\Drafts" in attrs]
            assert not drafty, listed
            assert "\\Sent" in listed.get("Sent", ()), listed
            login_fails(b.imaps(), NO_DRAFTS_USER, NO_DRAFTS_PASSWORD)
            b.imaps(alice, USERS[alice]).logout()

        @check("restart-dovecot: an IDLE connection is cut; same ports work after")
        def _():
            imap = a.imaps(alice, USERS[alice])
            idle(imap)
            answer = a.command("restart-dovecot")
            assert answer["ok"] and answer["dovecot_pid"] != a.info["dovecot_pid"], answer
            a.info["dovecot_pid"] = answer["dovecot_pid"]
            imap.sock.settimeout(2)
            try:
                while imap.readline():
                    pass
            except TimeoutError:
                raise AssertionError("the IDLE connection is still open") from None
            except OSError:
                pass  # reset rather than closed: cut all the same
            a.imaps(alice, USERS[alice]).logout()
            imap = imaplib.IMAP4("localhost", a.port("imap_starttls"), timeout=10)
            imap.starttls(ssl_context=a.tls())
            imap.login(bob, USERS[bob])
            imap.logout()
            assert a.count(alice, "INBOX", "X-Test-Id", "deliver-1") == 1

        @check("reset-uidvalidity: the INBOX gets a new UIDVALIDITY (twice in a row), its messages stay")
        def _():
            imap = a.imaps(alice, USERS[alice])
            before, messages = inbox_status(imap)
            imap.logout()
            assert messages >= 3, messages
            seen = {before}
            for _ in range(2):
                answer = a.command(f"reset-uidvalidity {alice}")
                assert answer["ok"] and answer["uidvalidity"] not in seen, (answer, seen)
                seen.add(answer["uidvalidity"])
                a.info["dovecot_pid"] = answer["dovecot_pid"]
                imap = a.imaps(alice, USERS[alice])
                assert inbox_status(imap) == (answer["uidvalidity"], messages), (inbox_status(imap), answer)
                imap.select("INBOX", readonly=True)
                typ, uids = imap.uid("SEARCH", "ALL")
                assert [int(u) for u in uids[0].split()] == list(range(1, messages + 1)), uids
                imap.logout()
            assert a.count(alice, "INBOX", "X-Test-Id", "deliver-1") == 1
            assert a.count(alice, "Drafts", "X-Test-Id", "stalled-draft-1") == 1  # other folders untouched

        @check("bad commands are answered with errors")
        def _():
            for line in ("frobnicate", "count alice@example.test INBOX", "password nobody@example.test x",
                         "reset-uidvalidity", "reset-uidvalidity nobody@example.test",
                         f"count {NO_DRAFTS_USER} Drafts X-Test-Id x"):
                answer = a.command(line)
                assert answer["ok"] is False and answer["error"], (line, answer)

        @check("exit 0 with Dovecot stopped: on stdin's end, and on SIGTERM")
        def _():
            for inst, stop in ((a, a.proc.stdin.close), (b, b.proc.terminate)):
                stop()
                assert inst.proc.wait(timeout=10) == 0
                assert not group_members(inst.info["dovecot_pid"]), "Dovecot processes left"
    finally:
        for inst in (a, b):
            if inst.proc.poll() is None:
                inst.proc.kill()
                inst.proc.wait()
        shutil.rmtree(base, ignore_errors=True)

    passed = sum(results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if all(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dir", type=Path, help="the instance's directory (created if missing)")
    mode.add_argument("--self-test", action="store_true", help="start two instances and check them")
    parser.add_argument("--no-drafts", action="store_true", help=f"also create {NO_DRAFTS_USER}")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return asyncio.run(serve(args.dir.resolve(), args.no_drafts))


if __name__ == "__main__":
    sys.exit(main())
