//! acta: the citizen's wallet and the auditor's verifier. Not built yet; it says so and
//! exits with an error.

fn main() -> std::process::ExitCode {
    eprintln!("acta: the command line is not built yet; see the project's issues");
    std::process::ExitCode::FAILURE
}
