// What every page shares: the JSON API client (session cookie + X-CSRF-Token), field
// errors, time zone arithmetic, the toast, and the live reminder notices (SSE).
// All user text is put into the page with textContent, never as HTML.

let sessionPromise = null;
let profilePromise = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && typeof body.detail === "string" && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** The signed-in session ({user_id, email, is_admin, csrf_token}) or null. */
export function session(refresh = false) {
  if (!sessionPromise || refresh) {
    sessionPromise = fetch("/api/auth/session", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .catch(() => null);
  }
  return sessionPromise;
}

/** The session, or off to the sign-in page (and a promise that never settles). */
export async function requireSession() {
  const found = await session();
  if (!found) {
    const next = location.pathname + location.search;
    location.replace("/signin?next=" + encodeURIComponent(next));
    return new Promise(() => {});
  }
  return found;
}

/** Call the JSON API; throws ApiError with the status and the body for anything not 2xx. */
export async function api(method, path, body, options = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const s = await session();
    if (s) headers["x-csrf-token"] = s.csrf_token;
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    keepalive: Boolean(options.keepalive),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !path.startsWith("/api/auth/")) {
      location.replace("/signin?next=" + encodeURIComponent(location.pathname));
    }
    throw new ApiError(response.status, data);
  }
  return data;
}

// -- forms and their errors -----------------------------------------------------------------

/** Remove every message of `form` and the fields' invalid marks. */
export function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) {
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/** Show `messages` ({field: text}, "" for the form) next to their fields; focus the first. */
export function showErrors(form, messages) {
  clearErrors(form);
  let first = null;
  for (const [field, text] of Object.entries(messages)) {
    let slot = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!slot) slot = form.querySelector('[data-error-for=""]');
    if (!slot) continue;
    slot.textContent = slot.textContent ? slot.textContent + " " + text : text;
    const input = field ? form.querySelector(`[name="${CSS.escape(field)}"]`) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    }
  }
  if (first) first.focus();
}

/** The messages of an API error, by the form's field names (`fields`; "" for the form). */
export function errorMessages(error, fields) {
  if (!(error instanceof ApiError)) return { "": "Could not reach duetime; try again." };
  const out = {};
  const add = (field, text) => {
    out[field] = out[field] ? out[field] + " " + text : text;
  };
  const known = (parts) => {
    for (let n = parts.length; n > 0; n--) {
      const key = parts.slice(0, n).join(".");
      if (fields.includes(key)) return key;
    }
    return "";
  };
  const errors = Array.isArray(error.body.errors) ? error.body.errors : [];
  if (errors.length) {
    for (const e of errors) {
      const loc = (e.loc || []).filter((p, i) => !(i === 0 && ["body", "query", "path"].includes(p)));
      add(known(loc.map(String)), e.msg || error.message);
    }
    return out;
  }
  if (error.status !== 422) return { "": error.message }; // 401, 403, 409, 429: the form's
  const detail = error.message;
  const named = fields.find((f) => f && new RegExp(`(^|[\\s"'(.])${f.replace(".", "\\.")}\\b`).test(detail));
  add(named || "", detail);
  return out;
}

/** Disable the form's buttons while `work` runs. */
export async function busy(form, work) {
  const buttons = form.querySelectorAll("button");
  for (const b of buttons) b.disabled = true;
  try {
    return await work();
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// -- the page's chrome ------------------------------------------------------------------

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

let toastTimer = null;

/** A short message at the bottom; `action` ({label, run}) adds a button (Undo). */
export function toast(text, action = null, ms = 4000) {
  const box = document.getElementById("toast");
  box.replaceChildren(el("span", { text }));
  if (action) {
    box.append(
      el("button", {
        type: "button",
        class: "link",
        text: action.label,
        onclick: () => {
          box.hidden = true;
          action.run();
        },
      }),
    );
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, ms);
}

async function refreshUnread() {
  const badge = document.getElementById("unread-count");
  if (!badge) return;
  try {
    const page = await api("GET", "/api/notifications?unread=true&limit=100");
    const n = page.notifications.length;
    badge.textContent = n >= 100 ? "99+" : String(n);
    badge.hidden = n === 0;
    badge.setAttribute("aria-label", `${n} unread`);
  } catch {
    badge.hidden = true;
  }
}

/** For a signed-in page: the session, the navigation, sign-out and the live notices. */
export async function startPage() {
  const s = await requireSession();
  const page = document.body.dataset.page;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === page) a.setAttribute("aria-current", "page");
  }
  document.getElementById("admin-link").hidden = !s.is_admin;
  document.getElementById("signout").addEventListener("click", async () => {
    try {
      localStorage.removeItem("duetime:zone"); // the task list's remembered zone (app.js)
      await api("POST", "/api/auth/signout");
    } finally {
      location.assign("/signin");
    }
  });
  startLive();
  refreshUnread();
  if ("serviceWorker" in navigator) {
    // a push the service worker got while this page is open shows as the same notice
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "push") showNotice(event.data.data);
    });
    setTimeout(() => {
      navigator.serviceWorker
        .register("/sw.js", { scope: "/" })
        .then(() => {
          document.body.dataset.serviceWorker = "registered";
        })
        .catch(() => {
          document.body.dataset.serviceWorker = "failed";
        });
    }, 500);
  }
  return s;
}

// -- time zones ---------------------------------------------------------------------------

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

export function profile(refresh = false) {
  if (!profilePromise || refresh) profilePromise = api("GET", "/api/me");
  return profilePromise;
}

/** The zone times are shown in: the user's (PUT /api/me), else the browser's. */
export async function userZone() {
  try {
    return (await profile()).timezone || browserZone();
  } catch {
    return browserZone();
  }
}

const partFormats = new Map();

/** The wall clock of instant `date` in `zone`: {year, month, day, hour, minute, second}. */
export function wallClock(date, zone) {
  let fmt = partFormats.get(zone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    partFormats.set(zone, fmt);
  }
  const out = {};
  for (const p of fmt.formatToParts(date)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

function offsetMs(date, zone) {
  const w = wallClock(date, zone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** The instant of wall time "YYYY-MM-DDTHH:MM[:SS]" in `zone` (the first of two at fall-back). */
export function instantOf(local, zone) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(local);
  if (!m) return null;
  const guess = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  const first = guess - offsetMs(new Date(guess), zone);
  const second = guess - offsetMs(new Date(first), zone);
  return new Date(Math.min(first, second));
}

const pad = (n) => String(n).padStart(2, "0");

/** "YYYY-MM-DDTHH:MM:SS" of `date` in `zone` (for date, time and datetime-local inputs). */
export function localInput(date, zone) {
  const w = wallClock(date, zone);
  return `${w.year}-${pad(w.month)}-${pad(w.day)}T${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

/** A readable date and time of `iso` in `zone`. */
const whenFormats = new Map();

export function formatWhen(iso, zone) {
  if (!iso) return "";
  let fmt = whenFormats.get(zone); // making a DateTimeFormat costs far more than using one
  if (!fmt) {
    fmt = new Intl.DateTimeFormat(undefined, {
      timeZone: zone,
      weekday: "short",
      day: "numeric",
      month: "short",
      hour: "2-digit",
      minute: "2-digit",
    });
    whenFormats.set(zone, fmt);
  }
  return fmt.format(new Date(iso));
}

export function timeZones() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

// -- live reminders -----------------------------------------------------------------------

let stream = null;

/** Listen to /api/notifications/stream: EventSource resumes with Last-Event-ID by itself
 * after a lost connection; a stream the server closed for good is opened again. */
export function startLive() {
  if (stream) return;
  const open = () => {
    stream = new EventSource("/api/notifications/stream");
    stream.addEventListener("notification", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      showNotice(data);
    });
    stream.addEventListener("open", () => {
      document.body.dataset.live = "open";
    });
    stream.addEventListener("error", () => {
      document.body.dataset.live = stream.readyState === EventSource.CLOSED ? "closed" : "retrying";
      if (stream.readyState === EventSource.CLOSED) {
        stream = null;
        setTimeout(() => {
          if (!stream) open();
        }, 5000);
      }
    });
  };
  open();
}

const shown = new Set();

function tomorrowMorning(zone) {
  const now = wallClock(new Date(), zone);
  const day = new Date(Date.UTC(now.year, now.month - 1, now.day + 1));
  const local = `${day.getUTCFullYear()}-${pad(day.getUTCMonth() + 1)}-${pad(day.getUTCDate())}T09:00:00`;
  return instantOf(local, zone);
}

/** The in-page notice of a fired reminder (and a system notification when allowed). */
export function showNotice(n) {
  if (!n || !n.notification_id || shown.has(n.notification_id)) return;
  shown.add(n.notification_id);
  document.dispatchEvent(new CustomEvent("duetime:notification", { detail: n }));
  refreshUnread();
  const box = document.getElementById("notices");
  const id = `notice-${n.notification_id}`;
  const custom = el("input", {
    type: "datetime-local",
    step: "1",
    name: "until",
    id: `${id}-until`,
    "aria-describedby": `${id}-error`,
  });
  const error = el("p", { class: "field-error", id: `${id}-error`, "data-error-for": "until" });
  const customForm = el(
    "form",
    { class: "snooze-custom", hidden: true, novalidate: true },
    el("label", { for: `${id}-until`, text: "Remind me at" }),
    custom,
    el("button", { type: "submit", text: "Snooze" }),
    error,
  );
  const notice = el(
    "article",
    { class: "notice", id, "aria-labelledby": `${id}-title`, "data-notification": n.notification_id },
    el("h2", { id: `${id}-title`, text: n.title || "Reminder" }),
    el("p", { text: n.message || "" }),
  );
  const close = () => {
    notice.remove();
    refreshUnread();
  };
  const snooze = async (body, label) => {
    try {
      await api("POST", `/api/notifications/${encodeURIComponent(n.notification_id)}/snooze`, body);
      await api("POST", `/api/notifications/${encodeURIComponent(n.notification_id)}/read`).catch(() => {});
      close();
      toast(`Snoozed ${label}`);
    } catch (e) {
      customForm.hidden = false;
      error.textContent = e.message;
    }
  };
  const actions = el(
    "div",
    { class: "actions" },
    el("button", { type: "button", text: "Snooze 10 min", onclick: () => snooze({ for: "PT10M" }, "for 10 minutes") }),
    el("button", { type: "button", text: "1 hour", onclick: () => snooze({ for: "PT1H" }, "for an hour") }),
    el("button", {
      type: "button",
      text: "Tomorrow 9:00",
      onclick: async () => snooze({ until: tomorrowMorning(await userZone()).toISOString() }, "until tomorrow"),
    }),
    el("button", {
      type: "button",
      text: "Custom…",
      "aria-expanded": "false",
      onclick: async (e) => {
        customForm.hidden = !customForm.hidden;
        e.target.setAttribute("aria-expanded", String(!customForm.hidden));
        if (!custom.value) custom.value = localInput(new Date(Date.now() + 15 * 60000), await userZone());
        custom.focus();
      },
    }),
    el("button", {
      type: "button",
      class: "primary",
      text: "Done",
      onclick: async () => {
        try {
          await api("POST", `/api/tasks/${encodeURIComponent(n.task_id)}/complete`);
          await api("POST", `/api/notifications/${encodeURIComponent(n.notification_id)}/read`).catch(() => {});
          close();
          document.dispatchEvent(new CustomEvent("duetime:tasks-changed"));
          toast("Done");
        } catch (e) {
          toast(e.message);
        }
      },
    }),
    el("button", {
      type: "button",
      class: "link",
      text: "Dismiss",
      onclick: async () => {
        await api("POST", `/api/notifications/${encodeURIComponent(n.notification_id)}/read`).catch(() => {});
        close();
      },
    }),
  );
  customForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const at = custom.value ? instantOf(custom.value, await userZone()) : null;
    if (!at || Number.isNaN(at.getTime())) {
      error.textContent = "Pick a date and time.";
      custom.setAttribute("aria-invalid", "true");
      return;
    }
    snooze({ until: at.toISOString() }, `until ${formatWhen(at.toISOString(), await userZone())}`);
  });
  notice.append(actions, customForm);
  box.append(notice);
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      const system = new Notification(n.title || "Reminder", { body: n.message || "", tag: n.notification_id });
      system.addEventListener("click", () => {
        window.focus();
        notice.querySelector("button")?.focus();
      });
    } catch {
      // some browsers only allow notifications from the service worker
    }
  }
}
