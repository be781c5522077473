//! The open-files limit. Every connection costs two descriptors (the socket
//! and the head watchdog's duplicate), and systemd's default soft limit of
//! 1 024 is exhausted by a few hundred slow clients. At start the soft limit
//! is raised to the hard limit, as nginx's `worker_rlimit_nofile` and Go's
//! runtime do; the hard limit is the operator's (`LimitNOFILE=`).

/// The soft limit before and after raising it to the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: u64,
    pub after: u64,
}

fn current() -> std::io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(limit)
}

/// Raises the soft open-files limit to the hard limit.
pub fn raise_to_hard_limit() -> std::io::Result<OpenFiles> {
    let mut limit = current()?;
    let before = limit.rlim_cur as u64;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(OpenFiles {
        before,
        after: current()?.rlim_cur as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_soft_limit_is_raised_to_the_hard_limit() {
        let mut limit = current().unwrap();
        if limit.rlim_max > 512 {
            limit.rlim_cur = 512;
            // SAFETY: as above.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        }
        let raised = raise_to_hard_limit().unwrap();
        let now = current().unwrap();
        assert_eq!(raised.after, now.rlim_max as u64);
        assert_eq!(now.rlim_cur, now.rlim_max);
        assert!(raised.before <= 512 || limit.rlim_max <= 512);
    }
}
