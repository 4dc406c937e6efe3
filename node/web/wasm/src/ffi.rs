//! The module's exports to JavaScript. Memory crosses as (pointer, length) pairs into the
//! module's linear memory: the page asks [`acta_alloc`] for a buffer, writes the request's
//! bytes, calls [`acta_call`], reads the answer at [`acta_answer_ptr`] and frees the
//! request with [`acta_free`]. The module is single-threaded; the answer stays until the
//! next call. See ADR 0021 for why this is hand-written rather than generated.
#![allow(unsafe_code)]

use std::cell::RefCell;

thread_local! {
    static ANSWER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` bytes (zeroed) for the page to write a request into.
#[unsafe(no_mangle)]
pub extern "C" fn acta_alloc(len: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>()
}

/// Zeroes and frees a buffer [`acta_alloc`] gave (a request may hold a passphrase or
/// recovery words).
///
/// # Safety
/// `ptr` and `len` are exactly those of one [`acta_alloc`] call, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acta_free(ptr: *mut u8, len: usize) {
    // SAFETY: the caller gives back the boxed slice of len bytes that acta_alloc leaked.
    let mut buf = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) };
    buf.fill(0);
    drop(buf);
}

/// Answers the request in `ptr[..len]` (see [`crate::call`]); returns the answer's length.
///
/// # Safety
/// `ptr[..len]` is a buffer from [`acta_alloc`] whose `len` bytes the page has written.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn acta_call(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller wrote len bytes at ptr, in a buffer of at least that capacity.
    let request = unsafe { std::slice::from_raw_parts(ptr, len) };
    let answer = crate::call(request);
    let n = answer.len();
    ANSWER.with(|a| *a.borrow_mut() = answer);
    n
}

/// Where the last answer's bytes are.
#[unsafe(no_mangle)]
pub extern "C" fn acta_answer_ptr() -> *const u8 {
    ANSWER.with(|a| a.borrow().as_ptr())
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod random {
    #[link(wasm_import_module = "acta")]
    unsafe extern "C" {
        /// Fills `ptr[..len]` with crypto.getRandomValues.
        fn random_fill(ptr: *mut u8, len: usize);
    }

    fn fill02(dest: &mut [u8]) -> Result<(), getrandom02::Error> {
        // SAFETY: the page's function writes exactly len bytes at ptr, inside this slice.
        unsafe { random_fill(dest.as_mut_ptr(), dest.len()) };
        Ok(())
    }
    getrandom02::register_custom_getrandom!(fill02);

    /// getrandom 0.4's custom backend.
    ///
    /// # Safety
    /// `dest[..len]` is writable.
    #[unsafe(no_mangle)]
    unsafe extern "Rust" fn __getrandom_v03_custom(
        dest: *mut u8,
        len: usize,
    ) -> Result<(), getrandom04::Error> {
        // SAFETY: getrandom hands a writable (possibly uninitialised) buffer of len bytes,
        // which the page's function fills; no reference to it is made here.
        unsafe { random_fill(dest, len) };
        Ok(())
    }
}
