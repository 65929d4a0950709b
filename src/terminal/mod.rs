//! Terminals: spawning a program on a pseudo-terminal and signalling its
//! processes ([`pty`]), reading its output as a stream ([`reader`]) and writing its
//! input ([`writer`]), the terminal
//! model that keeps its screen ([`screen`]), transcripts within a size on disk
//! ([`transcript`]), and knowing from the kernel when it waits for input
//! ([`waiting`], reading [`procfs`]).

pub mod procfs;
pub mod pty;
pub mod reader;
pub mod screen;
pub mod transcript;
pub mod waiting;
pub mod writer;
