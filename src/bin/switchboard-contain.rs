//! The containment helper on its own (see `switchboard::contain`): the server runs
//! it for every instance. A binary of its own is a fraction of the server's size,
//! so it starts faster and holds less memory per instance than the server's binary
//! would (which still serves as the helper, as `switchboard __contain`, where this
//! one is missing).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    args.insert(1, switchboard::contain::SUBCOMMAND.into());
    switchboard::contain::main_if_requested(&args).unwrap_or(ExitCode::from(127))
}
