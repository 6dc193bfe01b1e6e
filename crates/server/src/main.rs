//! The `mailwright` binary; everything lives in the library so tests can
//! start the real application.

fn main() -> std::process::ExitCode {
    mailwright::cli::main()
}
