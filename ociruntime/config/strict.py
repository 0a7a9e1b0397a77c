"""`ociruntime validate --strict`: every violation, not just the first, via jsonschema against schema.py.

jsonschema is imported inside the function (it costs ~100 ms): nothing on the create path imports this module.
Messages are formatted with validate.py's rule texts, so both validators describe a violation identically.
"""
from ..errors import ConfigError
from . import validate as _v
from .schema import CONFIG_SCHEMA


def _validator_class():
    import jsonschema
    from jsonschema import validators

    base = jsonschema.Draft7Validator

    def is_integer(checker, instance):      # as Go's decoder: 1.0 is not an integer (draft 7 would say it is)
        return type(instance) is int

    def pattern(validator, patrn, instance, schema):     # ECMA-262 `$`, and our rule text
        if validator.is_type(instance, "string") and _v.ecma_regex(patrn).search(instance) is None:
            yield jsonschema.ValidationError(_v.pattern_rule(instance, schema))

    return validators.extend(base, validators={"pattern": pattern},
                             type_checker=base.TYPE_CHECKER.redefine("integer", is_integer))


def _path(error) -> str:
    """Render an error's instance path as validate.py does: a.b[0], and map entries as a['key']."""
    path, instance_path = "", list(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    i = 0
    while i < len(schema_path) and instance_path:
        word = schema_path[i]
        if word == "properties":
            path = _v.join(path, instance_path.pop(0))
            i += 1                          # skip the property name
        elif word == "additionalProperties":
            path = _v.map_key(path, instance_path.pop(0))
        elif word == "items":
            path = f"{path}[{instance_path.pop(0)}]"
        i += 1
    return path


def _format(error) -> ConfigError:
    path, kw, schema, value = _path(error), error.validator, error.schema, error.instance
    if "propertyNames" in error.absolute_schema_path:
        return ConfigError(path, _v.EMPTY_KEY_RULE)
    if kw == "required":
        missing = [k for k in error.validator_value if k not in value]
        name = next((k for k in missing if repr(k) in error.message), missing[0])
        return ConfigError(_v.join(path, name), _v.REQUIRED_RULE)
    if kw == "type":
        return ConfigError(path, _v.type_rule(schema["type"], value))
    if kw == "enum":
        return ConfigError(path, _v.enum_rule(value, schema["enum"]))
    if kw in ("minimum", "maximum"):
        return ConfigError(path, _v.range_rule(value, schema.get("minimum"), schema.get("maximum")))
    if kw == "minItems":
        return ConfigError(path, _v.min_items_rule(schema["minItems"]))
    if kw == "anyOf":
        return ConfigError(path, _v.any_required_rule([n for c in schema["anyOf"] for n in c["required"]]))
    return ConfigError(path, error.message)      # pattern: its message is already our rule text


def strict_errors(doc, bundle: str | None = None, for_create: bool = True) -> list[ConfigError]:
    """Every schema violation; if there are none, every semantic one."""
    errors = [_format(e) for e in _validator_class()(CONFIG_SCHEMA).iter_errors(doc)]
    if not errors:
        errors = list(_v.semantic_errors(doc, bundle, for_create))
    return errors


def validate_strict(doc, bundle: str | None = None, for_create: bool = True) -> list[str]:
    """All violations of `doc`, each formatted like validate()'s ConfigError (`config.json: path: rule`)."""
    return [str(e) for e in strict_errors(doc, bundle, for_create)]
