//! Reference service for quantcore (work in progress: see the issue tracker).

fn main() {
    println!("quantcore-service {}", env!("CARGO_PKG_VERSION"));
}
