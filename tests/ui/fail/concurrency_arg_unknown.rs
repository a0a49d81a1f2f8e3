#[docket::task(concurrency(max = 1, arg = customer))]
async fn charge(customer_id: u64, cents: u64) {
    let _ = (customer_id, cents);
}

fn main() {}
