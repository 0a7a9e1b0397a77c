"""arm64 (uname: aarch64): the table of linux/arch/__init__.py.

The sealed exec program of linux/dmz.py: the same behaviour as x86_64.py's, 187 bytes assembled from this listing
with GNU as (binutils-aarch64-linux-gnu: aarch64-linux-gnu-as, then objcopy -O binary -j .text). The report fd is
the literal word at errfd (0x7eadbeef here), patched in; with a seccomp filter the code starts at DMZ_SKIP_CHMOD,
after the chmod. The kernel's entry state: sp -> argc, argv[0..argc-1], NULL, envp..., NULL (sp 16-byte aligned).

        mov  x0, #-100              // fchmodat(AT_FDCWD, "/proc/self/exe", 0): a script whose interpreter is
        adr  x1, exe_path           //   /proc/self/exe finds us not executable (EACCES) instead of re-exec'ing
        mov  x2, #0                 //   itself forever (arm64 has no chmod(2))
        mov  x8, #53
        svc  #0
    0x14:                           // DMZ_SKIP_CHMOD
        ldr  w0, errfd              // fcntl(ERRFD, F_SETFD, FD_CLOEXEC): the report fd never reaches the program
        mov  x1, #2
        mov  x2, #1
        mov  x8, #25
        svc  #0
        tbnz x0, #63, 5f            // refused (by a filter): report it, never exec with ERRFD open
        ldr  x3, [sp]               // execve(argv[0], &argv[1], envp = &argv[argc + 1])
        add  x1, sp, #16
        add  x2, x1, x3, lsl #3
        ldr  x0, [sp, #8]
        mov  x8, #221
        svc  #0
        neg  w9, w0                 // execve failed: errno
        b    4f
    5:  neg  w9, w0                 // fcntl failed: errno | 0x80
        orr  w9, w9, #0x80
    4:  ldr  x10, [sp, #8]          // writev(ERRFD, [{"\\0", errno}, {argv[0], strlen}]), exit_group(127)
        mov  x11, #0
    1:  ldrb w12, [x10, x11]        //   x11 = strlen(argv[0])
        cbz  w12, 2f
        add  x11, x11, #1
        b    1b
    2:  sub  sp, sp, #48            //   iovec[2] at sp, the two header bytes at sp + 32 (sp stays 16-aligned)
        strb wzr, [sp, #32]
        strb w9, [sp, #33]
        add  x12, sp, #32
        mov  x13, #2
        stp  x12, x13, [sp]
        stp  x10, x11, [sp, #16]
        ldr  w0, errfd
        mov  x1, sp
        mov  x2, #2
        mov  x8, #66
        svc  #0
        mov  x0, #127
        mov  x8, #94
        svc  #0
    errfd:    .word 0x7eadbeef      // DMZ_ERRFD_AT (4-aligned: ldr's literal form needs it)
    exe_path: .asciz "/proc/self/exe"
"""
NAME = "aarch64"
SECCOMP_ARCH = "SCMP_ARCH_AARCH64"
SECCOMP_COMPAT = ("SCMP_ARCH_ARM",)
AUDIT_ARCH = 0xC00000B7

NR = {
    "pivot_root": 41, "setns": 268, "unshare": 97, "pidfd_open": 434, "pidfd_send_signal": 424,
    "close_range": 436, "open_tree": 428, "move_mount": 429, "mount_setattr": 442, "openat2": 437,
    "sched_setattr": 274, "ioprio_set": 30, "set_mempolicy": 237, "personality": 92, "capget": 90,
    "capset": 91, "keyctl": 219, "bpf": 280, "seccomp": 277,
    "ioprio_get": 31, "get_mempolicy": 236, "clone3": 435,
}

DMZ_CODE = bytes.fromhex(
    "600c809241050010020080d2a80680d2010000d4a0040018410080d2220080d2280380d2010000d42001f8b7e30340f9e1430091220c"
    "038be00740f9a81b80d2010000d4e903004b03000014e903004b29011932ea0740f90b0080d24c696b386c0000346b050091fdffff17"
    "ffc300d1ff830039e9870039ec8300914d0080d2ec3700a9ea2f01a900010018e1030091420080d2480880d2010000d4e00f80d2c80b"
    "80d2010000d4efbead7e2f70726f632f73656c662f65786500")
DMZ_ERRFD_AT = (0xA8,)           # the literal word errfd (32-bit little-endian)
DMZ_SKIP_CHMOD = 0x14            # the entry point when the chmod is left out
DMZ_ELF_MACHINE = 0xB7           # EM_AARCH64
