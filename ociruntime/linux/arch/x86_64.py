"""x86-64 (uname: x86_64): the table of linux/arch/__init__.py.

The sealed exec program of linux/dmz.py (181 bytes, assembled from this listing with GNU as, Intel syntax; the
two 0x7eadbeef immediates are patched with the report fd; with a seccomp filter the code starts at DMZ_SKIP_CHMOD,
after the chmod):

        lea rdi, [rip + exe_path]   ; chmod("/proc/self/exe", 0): a script whose interpreter is /proc/self/exe
        xor esi, esi                ;   finds us not executable (EACCES) instead of re-exec'ing itself forever
        mov eax, 90
        syscall
    0x10:                           ; DMZ_SKIP_CHMOD
        mov edi, ERRFD              ; fcntl(ERRFD, F_SETFD, FD_CLOEXEC): the report fd never reaches the program
        mov esi, 2
        mov edx, 1
        mov eax, 72
        syscall
        test eax, eax               ; refused (by a filter): report it, never exec with ERRFD open
        js 5f
        mov rdx, [rsp]              ; execve(argv[0], &argv[1], envp)
        lea rsi, [rsp + 16]
        lea rdx, [rsp + rdx*8 + 16]
        mov rdi, [rsp + 8]
        mov eax, 59
        syscall
        neg eax                     ; execve failed: errno
        jmp 4f
    5:  neg eax                     ; fcntl failed: errno | 0x80
        or al, 0x80
    4:  mov byte [rsp - 2], 0       ; writev(ERRFD, [{"\\0", errno}, {argv[0], strlen}]), exit_group(127)
        mov byte [rsp - 1], al
        mov rsi, [rsp + 8]
        xor edx, edx
    1:  cmp byte [rsi + rdx], 0
        je 2f
        inc rdx
        jmp 1b
    2:  lea rax, [rsp - 2]
        mov [rsp - 40], rax
        mov qword [rsp - 32], 2
        mov [rsp - 24], rsi
        mov [rsp - 16], rdx
        mov edi, ERRFD
        lea rsi, [rsp - 40]
        mov edx, 2
        mov eax, 20
        syscall
        mov edi, 127
        mov eax, 231
        syscall
    exe_path: .asciz "/proc/self/exe"
"""
NAME = "x86_64"
SECCOMP_ARCH = "SCMP_ARCH_X86_64"
SECCOMP_COMPAT = ("SCMP_ARCH_X86", "SCMP_ARCH_X32")
AUDIT_ARCH = 0xC000003E

NR = {
    "pivot_root": 155, "setns": 308, "unshare": 272, "pidfd_open": 434, "pidfd_send_signal": 424,
    "close_range": 436, "open_tree": 428, "move_mount": 429, "mount_setattr": 442, "openat2": 437,
    "sched_setattr": 314, "ioprio_set": 251, "set_mempolicy": 238, "personality": 135, "capget": 125,
    "capset": 126, "keyctl": 250, "bpf": 321, "seccomp": 317,
    "ioprio_get": 252, "get_mempolicy": 239, "clone3": 435,
}

DMZ_CODE = bytes.fromhex(
    "488d3d9f00000031f6b85a0000000f05bfefbead7ebe02000000ba01000000b8480000000f0585c0781e488b1424488d742410488d54"
    "d410488b7c2408b83b0000000f05f7d8eb04f7d80c80c64424fe00884424ff488b74240831d2803c1600740548ffc2ebf5488d4424fe"
    "48894424d848c74424e00200000048897424e848895424f0bfefbead7e488d7424d8ba02000000b8140000000f05bf7f000000b8e700"
    "00000f052f70726f632f73656c662f65786500")
DMZ_ERRFD_AT = (0x11, 0x85)      # the two `mov edi, ERRFD` immediates (32-bit little-endian)
DMZ_SKIP_CHMOD = 0x10            # the entry point when the chmod is left out
DMZ_ELF_MACHINE = 0x3E           # EM_X86_64
