#[docket::task]
async fn send_email(to: String, #[inject] sender: String) {
    let _ = (to, sender);
}

fn main() {}
