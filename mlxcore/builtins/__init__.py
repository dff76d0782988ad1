"""Builtin plugins: registered first, exactly like external ones (see :data:`mlxcore.plugins.DEFAULT_PLUGINS`)."""
