// The operator view (administrators only): jobs with their next fire time, job dead letters
// with replay and discard, delivery dead letters, and the event log.
import { api, el, formatWhen, startPage, toast, userZone } from "./common.js";

const state = { zone: "UTC", jobsAfter: "", eventsBefore: null, prefix: "" };
const cell = (text) => el("td", { text: text == null ? "" : String(text) });
const when = (iso) => el("td", {}, el("time", { datetime: iso, text: formatWhen(iso, state.zone) }));

async function loadJobs(append = false) {
  if (!append) state.jobsAfter = "";
  const p = new URLSearchParams({ limit: "100", prefix: state.prefix });
  if (state.jobsAfter) p.set("after", state.jobsAfter);
  const page = await api("GET", "/api/admin/jobs?" + p);
  const rows = page.jobs.map((j) =>
    el("tr", { "data-job": j.name }, cell(j.name), when(j.next_fire_at), cell(j.schedule || j.due_time), cell(j.fired), cell(j.attempt)),
  );
  const body = document.getElementById("jobs");
  if (append) body.append(...rows);
  else body.replaceChildren(...rows);
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "empty", text: "No jobs." })));
  state.jobsAfter = page.next || "";
  document.getElementById("jobs-more").hidden = !page.next;
}

async function loadDead() {
  const page = await api("GET", "/api/admin/dead-letters?limit=200");
  const body = document.getElementById("dead");
  body.replaceChildren(
    ...page.dead_letters.map((d) => {
      const act = (label, run) => el("button", { type: "button", text: label, "aria-label": `${label} ${d.name}`, onclick: run });
      return el(
        "tr",
        { "data-dead": d.id },
        cell(d.name),
        when(d.scheduled_at),
        when(d.failed_at),
        cell(d.attempts),
        cell(d.error),
        el(
          "td",
          {},
          act("Replay", async () => {
            try {
              await api("POST", `/api/admin/dead-letters/${encodeURIComponent(d.id)}/replay`);
              toast("Replayed: delivered");
            } catch (e) {
              toast(e.message);
            }
            loadDead();
          }),
          " ",
          act("Discard", async () => {
            await api("DELETE", `/api/admin/dead-letters/${encodeURIComponent(d.id)}`).catch((e) => toast(e.message));
            loadDead();
          }),
        ),
      );
    }),
  );
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "empty", text: "No dead letters." })));
}

async function loadDeliveryDead() {
  const page = await api("GET", "/api/admin/delivery-dead-letters?limit=100");
  const body = document.getElementById("ddead");
  body.replaceChildren(
    ...page.deliveries.map((d) =>
      el(
        "tr",
        { "data-delivery": d.id },
        cell(d.user_id || ""),
        cell(d.channel),
        cell(d.target),
        cell(d.attempts),
        cell(d.last_error),
        el(
          "td",
          {},
          el("button", {
            type: "button",
            text: "Send again",
            onclick: async () => {
              try {
                await api("POST", `/api/admin/delivery-dead-letters/${encodeURIComponent(d.id)}/replay?user=${encodeURIComponent(d.user_id)}`);
                toast("Sending again");
              } catch (e) {
                toast(e.message);
              }
              loadDeliveryDead();
            },
          }),
        ),
      ),
    ),
  );
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "6", class: "empty", text: "No failed deliveries." })));
}

async function loadEvents(append = false) {
  if (!append) state.eventsBefore = null;
  const p = new URLSearchParams({ limit: "50" });
  if (state.eventsBefore) p.set("before", String(state.eventsBefore));
  const page = await api("GET", "/api/admin/events?" + p);
  const rows = page.events.map((e) =>
    el("tr", {}, cell(e.seq), cell(e.topic), cell(e.event.type), cell(e.user_id), when(e.event.time)),
  );
  const body = document.getElementById("events");
  if (append) body.append(...rows);
  else body.replaceChildren(...rows);
  state.eventsBefore = page.next;
  document.getElementById("events-more").hidden = !page.next;
}

let prefixTimer = null;
document.getElementById("jobs-filter").addEventListener("input", (e) => {
  clearTimeout(prefixTimer);
  prefixTimer = setTimeout(() => {
    state.prefix = e.target.value;
    loadJobs();
  }, 200);
});
document.getElementById("jobs-filter").addEventListener("submit", (e) => e.preventDefault());
document.getElementById("jobs-more").addEventListener("click", () => loadJobs(true));
document.getElementById("events-more").addEventListener("click", () => loadEvents(true));

(async () => {
  const s = await startPage();
  if (!s.is_admin) {
    document.getElementById("admin-denied").hidden = false;
    return;
  }
  state.zone = await userZone();
  document.getElementById("admin").hidden = false;
  try {
    await Promise.all([loadJobs(), loadDead(), loadDeliveryDead(), loadEvents()]);
  } catch (e) {
    toast(e.message);
  }
  document.body.dataset.adminReady = "1";
})();
