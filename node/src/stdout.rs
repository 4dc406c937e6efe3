//! Standard output for the binaries (`actad`, `acta-testnet`): like `println!`, except that a
//! closed pipe (`actad openapi | head`) is not an error. The process ends quietly and
//! successfully, as a Unix filter does, instead of panicking with a backtrace.

use std::io::{ErrorKind, Write};

/// Writes `args` (and a newline if `newline`) to standard output. A closed pipe exits the
/// process with status 0; any other failure to write exits it with status 1 and a message.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("writing to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` that treats a closed pipe as the end of the reader's interest.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdout::write(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*), true) };
}

/// `print!` that treats a closed pipe as the end of the reader's interest.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*), false) };
}
