"""Pipeline templates (`@template`, `Param`): parameters declared with types, defaults and help."""

from millstream.daemon.template import Param, Params, TemplateError, template

__all__ = ["Param", "Params", "TemplateError", "template"]
