# A raw-mode program that turns bracketed paste on and reports each submit (Enter
# outside a paste): a newline inside a paste shows as <NL>, a carriage return as
# <CR>. Used by tests/api/messages.rs and tests/browser/dashboard.test.mjs.
import os, sys, tty
fd = sys.stdin.fileno()
tty.setraw(fd)
os.write(1, b'\x1b[?2004hready> ')
buf, pasting, submits = b'', False, 0
while True:
    buf += os.read(fd, 1024)
    while True:
        if buf.startswith(b'\x1b[200~'): pasting, buf = True, buf[6:]; continue
        if buf.startswith(b'\x1b[201~'): pasting, buf = False, buf[6:]; continue
        if not buf or buf.startswith(b'\x1b'): break
        ch, buf = buf[:1], buf[1:]
        if ch == b'\r' and not pasting:
            submits += 1; os.write(1, b'\r\nSUBMIT %d\r\n' % submits)
        elif ch == b'\n':
            os.write(1, b'<NL>')
        elif ch == b'\r':
            os.write(1, b'<CR>')
        else:
            os.write(1, ch)
