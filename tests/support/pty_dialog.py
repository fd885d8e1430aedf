"""Runs a command in a pseudo-terminal, answers its prompts in order, prints the screen, exits with its code.

usage: pty_dialog.py EXPECT ANSWER [EXPECT ANSWER ...] -- COMMAND [ARGS...]

Each ANSWER is typed once EXPECT has appeared on the screen after the previous answer; it is
read with Python string escapes, so "\\r" is Enter, " " toggles a checkbox and "\\x1b[B" is the
down arrow.
"""
import codecs
import os
import pty
import sys
import time

split = sys.argv.index("--")
pairs, argv = sys.argv[1:split], sys.argv[split + 1:]
steps = [(pairs[i].encode(), codecs.decode(pairs[i + 1], "unicode_escape").encode())
         for i in range(0, len(pairs), 2)]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

screen = b""
seen = 0  # answers look for their prompt only after the previous answer
deadline = time.time() + 60
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    screen += chunk
    while steps and steps[0][0] in screen[seen:]:
        expect, answer = steps.pop(0)
        seen = screen.index(expect, seen) + len(expect)
        time.sleep(0.2)
        # One key at a time (an arrow is one 3-byte key): the prompt redraws between them.
        i = 0
        while i < len(answer):
            size = 3 if answer.startswith(b"\x1b[", i) else 1
            os.write(fd, answer[i:i + size])
            i += size
            time.sleep(0.1)
_, status = os.waitpid(pid, 0)
sys.stdout.write(screen.decode(errors="replace"))
if steps:
    sys.stdout.write("\n[pty_dialog: never saw %r]\n" % steps[0][0].decode())
sys.exit(os.waitstatus_to_exitcode(status))
