// The inbox: every reminder that fired, newest first, read and unread.
import { api, el, formatWhen, startPage, toast, userZone } from "./common.js";

const list = document.getElementById("inbox");
const more = document.getElementById("more");
const status = document.getElementById("inbox-status");
const state = { unread: false, cursor: null, zone: "UTC" };

function row(n) {
  const id = `note-${n.id}`;
  const item = el(
    "li",
    { class: n.read ? "task read" : "task unread", id, "data-notification": n.id },
    el("span", { class: "badge", text: n.read ? "read" : "unread" }),
    el(
      "div",
      {},
      el("span", { class: "title", text: n.title }),
      el(
        "div",
        { class: "meta" },
        el("span", { text: n.message }),
        el("time", { datetime: n.fired_at, text: formatWhen(n.fired_at, state.zone) }),
        n.late ? el("span", { class: "badge", text: "late" }) : null,
      ),
    ),
  );
  const buttons = el("div", { class: "buttons" });
  if (!n.read) {
    buttons.append(
      el("button", {
        type: "button",
        text: "Mark read",
        "aria-label": `Mark ${n.title} read`,
        onclick: async () => {
          try {
            const updated = await api("POST", `/api/notifications/${encodeURIComponent(n.id)}/read`);
            item.replaceWith(row(updated));
          } catch (e) {
            toast(e.message);
          }
        },
      }),
    );
  }
  buttons.append(
    el("button", {
      type: "button",
      text: "Snooze 10 min",
      "aria-label": `Snooze ${n.title} for 10 minutes`,
      onclick: async () => {
        try {
          await api("POST", `/api/notifications/${encodeURIComponent(n.id)}/snooze`, { for: "PT10M" });
          toast("Snoozed for 10 minutes");
        } catch (e) {
          toast(e.message);
        }
      },
    }),
  );
  item.append(buttons);
  return item;
}

async function load(append = false) {
  if (!append) state.cursor = null;
  const p = new URLSearchParams({ limit: "50" });
  if (state.unread) p.set("unread", "true");
  if (state.cursor) p.set("cursor", state.cursor);
  let page;
  try {
    page = await api("GET", "/api/notifications?" + p);
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  const rows = page.notifications.map(row);
  if (append) list.append(...rows);
  else list.replaceChildren(...rows);
  if (!list.children.length) list.append(el("li", { class: "empty", text: state.unread ? "Nothing unread." : "No reminders yet." }));
  state.cursor = page.next_cursor;
  more.hidden = !page.next_cursor;
  document.body.dataset.inboxVersion = String(Number(document.body.dataset.inboxVersion || 0) + 1);
}

for (const b of document.querySelectorAll("[data-filter]")) {
  b.addEventListener("click", () => {
    state.unread = b.dataset.filter === "unread";
    for (const o of document.querySelectorAll("[data-filter]")) o.setAttribute("aria-pressed", String(o === b));
    load();
  });
}
more.addEventListener("click", () => load(true));
document.addEventListener("duetime:notification", () => setTimeout(load, 200));

(async () => {
  await startPage();
  state.zone = await userZone();
  await load();
})();
