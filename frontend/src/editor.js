/* The code answer's editor: CodeMirror 6 over the form's <textarea data-code-editor>.
 *
 * Progressive enhancement: the textarea stays the form field. The editor is shown in its place and copies every
 * change into it, so the form posts exactly what the student sees, forms.js checks the size limit on the same
 * field, and without JavaScript the plain textarea works as before.
 *
 * Tab indents (Python needs it). The keyboard way out is CodeMirror's: Escape then Tab moves the focus on, and
 * Ctrl-M (Shift-Alt-M on macOS) switches Tab between indenting and moving the focus. The page says so next to the
 * editor (the element named by data-keys-help). */
import { EditorState, Compartment } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  bracketMatching, indentOnInput, indentUnit, syntaxHighlighting, defaultHighlightStyle,
} from "@codemirror/language";
import { python } from "@codemirror/lang-python";

function utf8Bytes(text) {
  return new TextEncoder().encode(text).length;
}

function kib(bytes) {
  return (bytes / 1024).toFixed(1);
}

function mount(textarea) {
  const label = document.querySelector(`label[for="${textarea.id}"]`);
  const limit = parseInt(textarea.getAttribute("data-max-bytes"), 10) || 0;
  const sizeEl = document.getElementById(textarea.getAttribute("data-size-display") || "");
  const keysHelp = document.getElementById(textarea.getAttribute("data-keys-help") || "");
  const describedBy = [textarea.getAttribute("aria-describedby"), keysHelp && keysHelp.id].filter(Boolean).join(" ");
  const editable = new Compartment();

  function showSize(text) {
    if (!sizeEl || !limit) { return; }
    const size = utf8Bytes(text);
    sizeEl.textContent = `${kib(size)} KiB of ${Math.floor(limit / 1024)} KiB used.`;
    sizeEl.classList.toggle("error", size > limit);
  }

  function editableState(on) {
    return [EditorState.readOnly.of(!on), EditorView.editable.of(on)];
  }

  const view = new EditorView({
    state: EditorState.create({
      doc: textarea.value,
      extensions: [
        lineNumbers(),
        highlightActiveLineGutter(),
        highlightActiveLine(),
        drawSelection(),
        history(),
        indentOnInput(),
        indentUnit.of("    "),
        EditorState.tabSize.of(4),
        bracketMatching(),
        syntaxHighlighting(defaultHighlightStyle, { fallback: true }),
        python(),
        keymap.of([...defaultKeymap, ...historyKeymap, indentWithTab]),
        editable.of(editableState(!textarea.readOnly)),
        EditorView.contentAttributes.of({
          "aria-labelledby": label ? label.id : "",
          "aria-describedby": describedBy,
          "aria-multiline": "true",
          // Focusable in its own right, so checkers (axe: scrollable-region-focusable) see the scroller's content
          // is reachable by keyboard; contenteditable alone is not counted.
          tabindex: "0",
          spellcheck: "false",
          autocapitalize: "off",
          autocorrect: "off",
        }),
        EditorView.updateListener.of((update) => {
          if (!update.docChanged) { return; }
          const text = update.state.doc.toString();
          textarea.value = text;
          textarea.removeAttribute("aria-invalid");
          showSize(text);
        }),
      ],
    }),
  });

  view.dom.classList.add("code-editor");
  textarea.parentNode.insertBefore(view.dom, textarea);
  textarea.hidden = true;
  // The label now names the editor (aria-labelledby); a click on it focuses the editor, not the hidden field.
  if (label) {
    label.removeAttribute("for");
    label.addEventListener("click", () => view.focus());
  }
  if (keysHelp) { keysHelp.hidden = false; }
  showSize(textarea.value);
  // forms.js focuses an over-long field; countdown.js locks the form when time is up.
  textarea.focusEditor = () => view.focus();
  const form = textarea.form;
  if (form) {
    form.addEventListener("player:locked", () => {
      view.dispatch({ effects: editable.reconfigure(editableState(false)) });
    });
  }
}

document.querySelectorAll("textarea[data-code-editor]").forEach(mount);
