//! actad: the Acta validator node. Not built yet; it says so and exits with an error.

fn main() -> std::process::ExitCode {
    eprintln!("actad: the node is not built yet; see the project's issues");
    std::process::ExitCode::FAILURE
}
