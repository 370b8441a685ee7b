// The terminal side of `vmessd ctl top`: raw keyboard input (no echo, no line buffering, Ctrl-C
// as a key so that quitting always goes through the restore), the alternate screen with the cursor
// hidden, the window size, and putting everything back on the way out. Plain ANSI/VT100 sequences
// that every terminal emulator and tmux understand; no curses.

import Glibc
import Shared

final class TopTerminal {
    private var saved = termios()
    private var active = false

    /// The terminal size (columns, rows); 80×24 when the output is not a terminal that says.
    static func size() -> (width: Int, height: Int) {
        var w = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &w) == 0, w.ws_col > 0, w.ws_row > 0 else { return (80, 24) }
        return (Int(w.ws_col), Int(w.ws_row))
    }

    static var isInteractive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

    /// Raw input, alternate screen, hidden cursor.
    func enter() throws {
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { throw PosixError(errno: errno, call: "tcgetattr") }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        // read() returns what is there (possibly nothing) at once; poll() does the waiting.
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 0
            cc[Int(VTIME)] = 0
        }
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0 else { throw PosixError(errno: errno, call: "tcsetattr") }
        active = true
        write("\u{1B}[?1049h\u{1B}[?25l")
    }

    /// Back to the terminal as it was: normal screen (with what it showed before), cursor, modes.
    func leave() {
        guard active else { return }
        active = false
        write("\u{1B}[?25h\u{1B}[?1049l")
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
    }

    deinit { leave() }

    /// Redraws the whole screen: each line from the top, erasing what was after it, then below.
    func draw(_ lines: [String]) {
        var frame = "\u{1B}[H"
        for (i, line) in lines.enumerated() {
            frame += line + "\u{1B}[K" + (i < lines.count - 1 ? "\r\n" : "")
        }
        write(frame + "\u{1B}[J")
    }

    /// Waits up to `seconds` for a key; the keys typed (empty on a timeout or a signal).
    func keys(waiting seconds: Double) -> [UInt8] {
        var fd = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&fd, 1, Int32(max(0, seconds) * 1000)) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        // End of input (the terminal went away) reads as a quit.
        if n == 0 { return [UInt8(ascii: "q")] }
        return n > 0 ? Array(buffer.prefix(n)) : []
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 { offset += n } else if n < 0 && errno == EINTR { continue } else { return }
        }
    }
}
