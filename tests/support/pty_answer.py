"""Runs a command in a pseudo-terminal, answers its first prompt, prints the screen, exits with its code.

usage: pty_answer.py ANSWER COMMAND [ARGS...]
"""
import os
import pty
import sys
import time

answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)

screen = b""
answered = False
deadline = time.time() + 60
while time.time() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    screen += chunk
    if not answered and b"Apply these changes?" in screen:
        time.sleep(0.2)
        os.write(fd, answer.encode() + b"\r")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(screen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
