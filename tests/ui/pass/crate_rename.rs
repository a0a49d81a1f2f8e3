//! `crate = ...` points the generated code at a renamed or re-exported runtime.

extern crate docket as dk;

mod runtime {
    pub use dk::*;
}

#[dk::task(crate = dk)]
async fn by_path(count: u32) {
    let _ = count;
}

#[dk::task(crate = "dk", retry = 2)]
async fn by_string() {}

#[dk::task(crate = crate::runtime)]
async fn by_reexport() {}

fn main() {
    let _: dk::Call = ByPath::new(1).into();
    assert_eq!(<ByString as dk::Task>::OPTIONS.retry.attempts(), Some(2));
    assert_eq!(<ByReexport as runtime::Task>::NAME, "by_reexport");
}
