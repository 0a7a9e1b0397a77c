from . import Opt

SUMMARY = "check a bundle's config.json against runtime-spec v1.3.0"
USAGE = "[command options]"
DESCRIPTION = """
Validates <bundle>/config.json as `create` does (schema + the spec's MUSTs) and prints every error, one per line.
--strict uses the jsonschema library as the reference validator instead of the fast built-in one."""
OPTIONS = (
    Opt("--bundle", "-b", value="DIR", default=".", help="path to the root of the bundle directory"),
    Opt("--strict", help="validate with jsonschema (the reference) and report every error"),
)
NARGS = (0, 0)


def run(g, o, args):
    import os
    from .. import fastjson
    from ..errors import ConfigError, RuntimeErr
    from . import out
    path = os.path.join(o["bundle"], "config.json")
    try:
        with open(path, "rb") as f:
            doc = fastjson.loads(f.read())
    except OSError as e:
        raise RuntimeErr(f"read {path}: {e.strerror}") from None
    except ValueError as e:          # fastjson.JSONError: line and column
        raise RuntimeErr(f"{path}: invalid JSON: {e}") from None
    if o["strict"]:
        from ..config.strict import validate_strict
        errors = validate_strict(doc, bundle=o["bundle"])
        if errors:
            raise RuntimeErr(f"{len(errors)} error(s):\n" + "\n".join(errors))
    else:
        from ..config.validate import validate
        try:
            validate(doc, bundle=o["bundle"])
        except ConfigError:
            raise
    out(f"{path}: valid\n")
    return 0
