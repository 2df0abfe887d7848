// Every delivery to the user's webhook, email and browsers, each with its attempts.
import { api, el, formatWhen, startPage, toast, userZone } from "./common.js";

const box = document.getElementById("deliveries");
const more = document.getElementById("more");
const state = { filter: "", cursor: null, zone: "UTC" };

function card(d) {
  const attempts = el(
    "table",
    {},
    el("caption", { class: "hint", text: `Attempts (${d.attempts} of at most ${d.attempt_limit})` }),
    el(
      "thead",
      {},
      el("tr", {}, ...["#", "Result", "HTTP", "Started", "Error"].map((h) => el("th", { scope: "col", text: h }))),
    ),
    el(
      "tbody",
      {},
      ...d.history.map((a) =>
        el(
          "tr",
          {},
          el("td", { text: String(a.attempt) }),
          el("td", { text: a.status }),
          el("td", { text: a.http_status == null ? "" : String(a.http_status) }),
          el("td", {}, el("time", { datetime: a.started_at, text: formatWhen(a.started_at, state.zone) })),
          el("td", { text: a.error || "" }),
        ),
      ),
    ),
  );
  const section = el(
    "article",
    { class: "panel", "data-delivery": d.id },
    el("h2", { text: `${d.channel} → ${d.target}` }),
    el(
      "p",
      { class: "meta" },
      el("span", { class: "badge", text: d.state }),
      " ",
      el("span", { text: `created ${formatWhen(d.created_at, state.zone)}` }),
      d.next_attempt_at ? el("span", { text: ` · next attempt ${formatWhen(d.next_attempt_at, state.zone)}` }) : null,
      d.last_error ? el("span", { text: ` · ${d.last_error}` }) : null,
    ),
    attempts,
  );
  if (d.state === "dead") {
    section.append(
      el("button", {
        type: "button",
        text: "Send again",
        onclick: async () => {
          try {
            await api("POST", `/api/dead-letters/${encodeURIComponent(d.id)}/replay`);
            toast("Sending again");
            load();
          } catch (e) {
            toast(e.message);
          }
        },
      }),
    );
  }
  return section;
}

async function load(append = false) {
  if (!append) state.cursor = null;
  const p = new URLSearchParams({ limit: "20" });
  if (state.filter) p.set("state", state.filter);
  if (state.cursor) p.set("cursor", state.cursor);
  try {
    const page = await api("GET", "/api/deliveries?" + p);
    const cards = page.deliveries.map(card);
    if (append) box.append(...cards);
    else box.replaceChildren(...cards);
    if (!box.children.length) box.append(el("p", { class: "empty", text: "No deliveries yet." }));
    state.cursor = page.next_cursor;
    more.hidden = !page.next_cursor;
  } catch (e) {
    document.getElementById("deliveries-status").textContent = e.message;
  }
}

for (const b of document.querySelectorAll("[data-state]")) {
  b.addEventListener("click", () => {
    state.filter = b.dataset.state;
    for (const o of document.querySelectorAll("[data-state]")) o.setAttribute("aria-pressed", String(o === b));
    load();
  });
}
more.addEventListener("click", () => load(true));

(async () => {
  await startPage();
  state.zone = await userZone();
  await load();
})();
