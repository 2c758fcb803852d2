"""Render engine form fields (digits_engine.fields.Field) as Streamlit widgets.

Numbers are typed in text boxes so that the engine's validation, not the
widget, says what is wrong, next to the field."""
import streamlit as st

from digits_engine.fields import Field


def _label(field: Field, value) -> str:
    return field.choice_labels.get(value, str(value))


def widget(field: Field, key: str, error: str | None = None, choices=None, labels: dict | None = None):
    """One field's widget, its value kept in st.session_state[key]; the error, if any, under it."""
    label = field.label + (" *" if field.required else "")
    if field.kind == "choice" or choices is not None:
        options = list(choices if choices is not None else field.choices)
        names = labels or {}
        st.selectbox(label, options, key=key, help=field.help or None,
                     format_func=lambda v: names.get(v, _label(field, v)))
    elif field.kind == "bool":
        st.checkbox(label, key=key, help=field.help or None)
    else:
        st.text_input(label, key=key, help=field.help or None,
                      placeholder="blank: none" if field.default is None and not field.required else None)
    if error:
        st.error(error, icon=":material/error:")


def init_state(fields: list[Field], prefix: str, overrides: dict | None = None) -> None:
    """Put each field's starting value in session_state once (text boxes hold strings)."""
    overrides = overrides or {}
    for field in fields:
        key = prefix + field.name
        if key in st.session_state:
            continue
        value = overrides.get(field.name, field.default)
        if field.kind in ("choice", "bool"):
            st.session_state[key] = value
        else:
            st.session_state[key] = "" if value is None else str(value)


def values(fields: list[Field], prefix: str) -> dict:
    return {f.name: st.session_state.get(prefix + f.name) for f in fields}
