//! main-app: the public web app that issues and verifies codes. Not built yet: see issue 4.

fn main() {
    eprintln!("main-app is not implemented yet (issue 4)");
    std::process::exit(2);
}
