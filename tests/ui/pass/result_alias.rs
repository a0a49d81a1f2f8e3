//! The output of a task returning a `Result` — or an alias of one — is its `Ok` type.

use docket::Task;

#[docket::task]
async fn with_anyhow(count: u32) -> anyhow::Result<u32> {
    Ok(count)
}

#[docket::task]
async fn with_io() -> std::io::Result<String> {
    Ok(String::new())
}

#[docket::task]
async fn with_docket() -> docket::Result<Vec<u8>> {
    Ok(Vec::new())
}

#[docket::task]
async fn with_std(fail: bool) -> Result<Option<u8>, String> {
    if fail {
        Err("failed".to_owned())
    } else {
        Ok(Some(1))
    }
}

#[docket::task]
async fn plain() -> Option<u8> {
    None
}

fn output_is<T: Task<Output = O>, O>() {}

fn main() {
    output_is::<WithAnyhow, u32>();
    output_is::<WithIo, String>();
    output_is::<WithDocket, Vec<u8>>();
    output_is::<WithStd, Option<u8>>();
    output_is::<Plain, Option<u8>>();
}
