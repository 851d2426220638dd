#pragma once
// The syscall policy of a sandbox process (DESIGN.md §5), installed with libseccomp before the
// plugin library is loaded, for the life of the process (it cannot be lifted).
//
// An allowlist: what a Go runtime, the SDK, corral-sandbox itself and ordinary plugin code
// (files, time, network egress over TCP/UDP/unix sockets) need. Anything else fails with EPERM
// rather than killing the process, so a runtime probing an optional syscall carries on. Never
// allowed, whatever the list grows to: execve/execveat, ptrace, process_vm_readv/writev, mount
// and friends, kexec, module loading, bpf, new namespaces (unshare, setns, clone with CLONE_NEW*),
// raw and packet sockets. clone3 answers ENOSYS so that threads are made with clone, whose flags
// a filter can see.
//
// Reading another process's memory through /proc/<pid>/mem is refused by the kernel on its own
// once the sandbox runs under another uid (launcher.h); no path filtering is attempted here.

#include "absl/status/status.h"

namespace corral::sandbox {

// Installs the policy on the calling process (all threads, with TSYNC). Call before any thread
// other than the caller's exists, or accept that TSYNC applies it to them too.
absl::Status installSandboxSeccomp();

}  // namespace corral::sandbox
