"""linux/criu.py's hand-written protobuf codec against the field numbers of criu's rpc.proto."""
from ociruntime.linux import criu


def test_request_encoding_matches_protobuf_wire_format():
    # criu_req{type: DUMP, opts{images_dir_fd: 5, root: "/r", ext_mnt [{key:"/a", val:"/b"}]}}
    data = criu.encode({"type": criu.DUMP, "opts": {"images_dir_fd": 5, "root": "/r",
                                                    "ext_mnt": [{"key": "/a", "val": "/b"}]}}, criu._REQ)
    opts = b"\x08\x05" + b"\x6a\x02/r" + b"\xba\x01\x08\x0a\x02/a\x12\x02/b"
    assert data == b"\x08\x01" + b"\x12" + bytes([len(opts)]) + opts


def test_none_is_left_out_and_lists_repeat():
    assert criu.encode({"pid": None, "external": ["a", "b"]}, criu._OPTS) == b"\xaa\x02\x01a\xaa\x02\x01b"


def test_negative_int32_is_ten_bytes_and_decodes_back():
    data = criu.encode({"status_fd": -1}, criu._OPTS)
    assert len(data) == 2 + 10
    assert criu.decode(data, {49: ("status_fd", "v")}) == {"status_fd": -1}


def test_response_decoding_with_nested_messages_and_unknown_fields():
    notify = b"\x0a\x0cpost-restore" + b"\x10\xd2\x09"           # script, pid 1234
    resp = b"\x08\x06" + b"\x10\x01" + b"\x2a" + bytes([len(notify)]) + notify + b"\xf8\x07\x01"  # + field 127
    assert criu.decode(resp, criu._RESP) == {"type": criu.NOTIFY, "success": 1,
                                             "notify": {"script": "post-restore", "pid": 1234}}


def test_failure_message_quotes_the_first_real_error_of_the_log(tmp_path):
    log = tmp_path / "dump.log"
    log.write_text("(0.1) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self\n"
                   "(0.2) Error (criu/files-reg.c:1790): Can't lookup mount=1 for fd=2\n(0.3) Error: later\n")
    msg = criu._failure({"type": criu.DUMP, "success": 0, "cr_errmsg": "x"}, criu.DUMP, str(log))
    assert msg == (f"criu failed: type DUMP: (0.2) Error (criu/files-reg.c:1790): Can't lookup mount=1 for fd=2 "
                   f"(see {log})")
