// Sign-in and sign-up: the form posts JSON to /api/auth/*; errors go next to their field.
import { api, busy, clearErrors, errorMessages, session, showErrors } from "./common.js";

function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "/app";
  // only a path of this site: never an open redirect
  return next.startsWith("/") && !next.startsWith("//") ? next : "/app";
}

export function authForm(formId, path, fields) {
  const form = document.getElementById(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const body = {};
    for (const name of fields) {
      const value = form.elements[name].value;
      if (name === "invite" && !value.trim()) continue;
      body[name] = name === "email" ? value.trim() : value;
    }
    const missing = {};
    if (!body.email) missing.email = "Enter your email address.";
    if (!body.password) missing.password = "Enter your password.";
    if (Object.keys(missing).length) {
      showErrors(form, missing);
      return;
    }
    await busy(form, async () => {
      try {
        await api("POST", path, body);
        await session(true);
        location.assign(nextPage());
      } catch (error) {
        showErrors(form, errorMessages(error, ["email", "password", "invite"]));
      }
    });
  });
  session().then((s) => {
    if (s) location.replace(nextPage());
  });
  form.elements.email.focus();
}
