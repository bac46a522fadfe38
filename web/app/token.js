// The form the page shows when the API answers 401: a token, kept in this tab's sessionStorage.
import { html, useState } from '/vendor/htm/preact/standalone.module.js';

export function TokenForm({ hadToken, onToken }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return html`<form class="token-form" onSubmit=${submit}>
    <h1>A token is needed</h1>
    <p>${hadToken ? 'The coordinator refused the token this tab had. ' : ''}This coordinator checks
      tokens (<code>--token-file</code>). Paste one with the <code>read</code> scope; it stays in
      this tab only and is sent as an <code>Authorization</code> header.</p>
    <label>Token <input type="password" name="token" autocomplete="off" value=${value}
      onInput=${(e) => setValue(e.target.value)} autofocus /></label>
    <button type="submit">Use this token</button>
  </form>`;
}
