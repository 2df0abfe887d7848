// The task list: views, search and tag filter, quick add, the edit dialog, complete /
// reopen / skip / stop, and delete with undo (the DELETE waits until the undo window closes).
import {
  api,
  busy,
  clearErrors,
  el,
  errorMessages,
  formatWhen,
  instantOf,
  localInput,
  showErrors,
  startPage,
  timeZones,
  toast,
  userZone,
  wallClock,
} from "./common.js";

const PAGE = 100;
const FIRST = 25; // the first screenful: asked and drawn first, the rest of the page after it
const ZONE_KEY = "duetime:zone"; // the zone of the last visit, to draw before /api/me answers
const UNDO_MS = 5000;
const TASK_FIELDS = [
  "title", "description", "due_at", "date", "timezone", "priority", "tags", "reminders", "recurrence", "repeat_after",
];
const PREVIEW_MS = 250; // the preview waits this long after the last keystroke

const list = document.getElementById("task-list");
const more = document.getElementById("more");
const status = document.getElementById("list-status");
const state = { view: "open", q: "", tag: "", cursor: null, zone: "UTC", loading: 0 };
const pendingDeletes = new Map(); // task id -> timer
const tagsSeen = new Set();

const pad = (n) => String(n).padStart(2, "0");

function startOfDay(zone, plusDays = 0) {
  const w = wallClock(new Date(), zone);
  const d = new Date(Date.UTC(w.year, w.month - 1, w.day + plusDays));
  return instantOf(`${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T00:00:00`, zone);
}

function query(limit = PAGE) {
  const p = new URLSearchParams({ limit: String(limit) });
  const now = new Date().toISOString();
  switch (state.view) {
    case "today":
      p.set("status", "open");
      p.set("due_after", startOfDay(state.zone).toISOString());
      p.set("due_before", startOfDay(state.zone, 1).toISOString());
      p.set("sort", "due_at");
      break;
    case "upcoming":
      p.set("status", "open");
      p.set("due_after", now);
      p.set("sort", "due_at");
      break;
    case "overdue":
      p.set("status", "open");
      p.set("due_before", now);
      p.set("sort", "due_at");
      break;
    case "done":
      p.set("status", "done");
      p.set("sort", "-created_at");
      break;
    default:
      p.set("status", "open");
      p.set("sort", "due_at");
  }
  if (state.q) p.set("q", state.q);
  if (state.tag) p.set("tag", state.tag);
  if (state.cursor) p.set("cursor", state.cursor);
  return "/api/tasks?" + p.toString();
}

function dueText(task) {
  if (!task.due_at) return null;
  const shown = formatWhen(task.due_at, state.zone);
  if (task.timezone && task.timezone !== state.zone && task.local_due_at) {
    return `${shown} (${task.local_due_at.slice(11, 16)} ${task.timezone})`;
  }
  return shown;
}

function renderTask(task) {
  const done = task.status !== "open";
  const id = `task-${task.id}`;
  const overdue = !done && task.due_at && new Date(task.due_at) < new Date();
  const due = dueText(task);
  const meta = el("div", { class: "meta" });
  if (due) {
    meta.append(
      el("time", { datetime: task.due_at, class: overdue ? "overdue due" : "due", text: (overdue ? "Overdue · " : "") + due }),
    );
  }
  if (task.series_id) meta.append(el("span", { class: "badge", text: `repeats · #${task.occurrence || 1}` }));
  if (task.reminders.some((r) => r.urgent)) meta.append(el("span", { class: "badge", text: "urgent" }));
  if (task.priority === "high") meta.append(el("span", { class: "badge", text: "high priority" }));
  for (const tag of task.tags) {
    tagsSeen.add(tag);
    meta.append(el("span", { class: "tag", text: "#" + tag }));
  }
  if (task.description) meta.append(el("span", { class: "notes", text: task.description.slice(0, 120) }));
  const box = el("input", { type: "checkbox", id: `${id}-done`, "aria-describedby": `${id}-meta` });
  box.checked = done;
  box.addEventListener("change", () => setDone(task, box.checked, box));
  meta.id = `${id}-meta`;
  return el(
    "li",
    { class: done ? "task done" : "task", id, "data-task": task.id, "data-title": task.title },
    box,
    el("div", {}, el("label", { for: `${id}-done`, class: "title", text: task.title }), meta),
    el(
      "div",
      { class: "buttons" },
      el("button", { type: "button", text: "Edit", "aria-label": `Edit ${task.title}`, onclick: () => openEditor(task.id) }),
      el("button", {
        type: "button",
        class: "danger",
        text: "Delete",
        "aria-label": `Delete ${task.title}`,
        onclick: () => deleteWithUndo(task),
      }),
    ),
  );
}

let firstPaint = true;
const idle = (work) => (window.requestIdleCallback ? requestIdleCallback(work, { timeout: 200 }) : setTimeout(work, 0));

function draw(page, append) {
  const rows = document.createDocumentFragment();
  for (const task of page.tasks) {
    if (!pendingDeletes.has(task.id)) rows.append(renderTask(task));
  }
  if (append) list.append(rows);
  else list.replaceChildren(rows);
  state.cursor = page.next_cursor;
}

/** A page of the view: a new view asks for its first screenful (FIRST), draws it, and
 * asks for the rest of the page (PAGE) in idle time, so the first paint waits for little. */
async function load(append = false, prefetched = null) {
  const ticket = ++state.loading;
  if (!append) state.cursor = null;
  status.textContent = "Loading…";
  let page;
  try {
    page = await (prefetched || api("GET", query(append ? PAGE : FIRST)));
  } catch (e) {
    status.textContent = e.message;
    return;
  }
  if (ticket !== state.loading) return; // a newer view was asked for meanwhile
  draw(page, append);
  if (!append && page.next_cursor && page.tasks.length < PAGE) {
    markPainted();
    await new Promise((resolve) => idle(resolve));
    if (ticket !== state.loading) return;
    try {
      page = await api("GET", query(PAGE - page.tasks.length));
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    if (ticket !== state.loading) return;
    draw(page, true);
  }
  finish(page);
}

function finish(page) {
  more.hidden = !page.next_cursor;
  const n = list.children.length;
  status.textContent = n ? `${n}${page.next_cursor ? "+" : ""} task${n === 1 ? "" : "s"}` : "";
  if (!n) list.append(el("li", { class: "empty", text: emptyText() }));
  const known = document.getElementById("known-tags");
  known.replaceChildren(...[...tagsSeen].sort().map((t) => el("option", { value: t })));
  markPainted();
  document.body.dataset.listVersion = String(Number(document.body.dataset.listVersion || 0) + 1);
}

function markPainted() {
  if (firstPaint) {
    firstPaint = false;
    requestAnimationFrame(() =>
      setTimeout(() => {
        performance.mark("duetime:task-list-painted");
        document.body.dataset.listPainted = "1";
      }, 0),
    );
  }
}

function emptyText() {
  if (state.q || state.tag) return "No task matches.";
  return {
    today: "Nothing due today.",
    upcoming: "Nothing coming up.",
    overdue: "Nothing overdue.",
    done: "Nothing done yet.",
  }[state.view] || "No tasks yet: add one above.";
}

async function setDone(task, done, box) {
  try {
    await api("POST", `/api/tasks/${encodeURIComponent(task.id)}/${done ? "complete" : "reopen"}`);
    toast(done ? `Done: ${task.title}` : `Reopened: ${task.title}`);
    await load();
  } catch (e) {
    box.checked = !done;
    toast(e.message);
  }
}

function deleteWithUndo(task) {
  const row = document.getElementById(`task-${task.id}`);
  if (row) row.hidden = true;
  const timer = setTimeout(() => flushDelete(task.id), UNDO_MS);
  pendingDeletes.set(task.id, timer);
  toast(
    `Deleted “${task.title}”`,
    {
      label: "Undo",
      run: () => {
        clearTimeout(pendingDeletes.get(task.id));
        pendingDeletes.delete(task.id);
        if (row) row.hidden = false;
        toast("Restored");
      },
    },
    UNDO_MS,
  );
}

async function flushDelete(id, keepalive = false) {
  if (!pendingDeletes.has(id)) return;
  clearTimeout(pendingDeletes.get(id));
  pendingDeletes.delete(id);
  try {
    await api("DELETE", `/api/tasks/${encodeURIComponent(id)}`, undefined, { keepalive });
  } catch (e) {
    if (e.status !== 404) toast(e.message);
  }
  if (!keepalive) document.getElementById(`task-${id}`)?.remove();
}

addEventListener("pagehide", () => {
  for (const id of [...pendingDeletes.keys()]) flushDelete(id, true);
});

// -- quick add ------------------------------------------------------------------------------

function withSeconds(time) {
  return time.length === 5 ? time + ":00" : time;
}

const quick = document.getElementById("quick-add");
quick.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(quick);
  let title = quick.elements.title.value;
  const tags = [];
  title = title.replace(/(^|\s)#([\p{L}\p{N}_-]{1,64})/gu, (_, space, tag) => {
    tags.push(tag);
    return space;
  });
  title = title.replace(/\s+/g, " ").trim();
  const date = quick.elements.date.value;
  const time = quick.elements.time.value;
  const problems = {};
  if (!title) problems.title = "Give the task a title.";
  if (time && !date && !quick.elements.date.validity.badInput) {
    // a time alone means today
  } else if (quick.elements.date.validity.badInput) {
    problems.date = "Enter a valid date.";
  }
  if (Object.keys(problems).length) return showErrors(quick, problems);
  const body = { title };
  if (tags.length) body.tags = tags;
  if (date || time) {
    const day = date || localInput(new Date(), state.zone).slice(0, 10);
    body.due_at = `${day}T${withSeconds(time || "09:00")}`;
    body.timezone = state.zone;
  }
  await busy(quick, async () => {
    try {
      await api("POST", "/api/tasks", body);
      quick.reset();
      quick.elements.title.focus();
      toast(`Added: ${title}`);
      await load();
    } catch (e) {
      showErrors(quick, errorMessages(e, ["title", "date", "due_at", "tags"]));
    }
  });
});

// -- views and filters ----------------------------------------------------------------------

for (const button of document.querySelectorAll("[data-view]")) {
  button.addEventListener("click", () => {
    state.view = button.dataset.view;
    for (const b of document.querySelectorAll("[data-view]")) b.setAttribute("aria-pressed", String(b === button));
    load();
  });
}
const filters = document.getElementById("filters");
let filterTimer = null;
filters.addEventListener("input", () => {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => {
    state.q = filters.elements.q.value.trim();
    state.tag = filters.elements.tag.value.trim().replace(/^#/, "");
    load();
  }, 200);
});
filters.addEventListener("submit", (e) => e.preventDefault());
more.addEventListener("click", () => load(true));
document.addEventListener("duetime:tasks-changed", () => load());
document.addEventListener("duetime:notification", () => setTimeout(() => load(), 300));

// -- the edit dialog ------------------------------------------------------------------------

const dialog = document.getElementById("edit-dialog");
const form = document.getElementById("edit-form");
const reminderBox = document.getElementById("reminders");
const repeat = form.elements.repeat;
const rrule = form.elements.recurrence;
let editing = null; // {task, series}
const PRESETS = {
  daily: "FREQ=DAILY",
  weekdays: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
  weekly: "FREQ=WEEKLY",
  monthly: "FREQ=MONTHLY",
  yearly: "FREQ=YEARLY",
}; // as the server normalizes them (duetime.tasks.recurrence.PRESETS)

function parseBefore(iso) {
  const m = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(iso || "");
  if (!m) return { amount: 0, unit: "minutes" };
  const minutes = ((+m[1] || 0) * 7 * 1440) + ((+m[2] || 0) * 1440) + ((+m[3] || 0) * 60) + (+m[4] || 0) + (+m[5] || 0) / 60;
  if (minutes && minutes % 1440 === 0) return { amount: minutes / 1440, unit: "days" };
  if (minutes && minutes % 60 === 0) return { amount: minutes / 60, unit: "hours" };
  return { amount: Math.round(minutes), unit: "minutes" };
}

function reminderRow(reminder, zone) {
  const n = reminderBox.children.length;
  const kind = el(
    "select",
    { name: `reminders.${n}.kind`, "aria-label": `Reminder ${n + 1}: when` },
    el("option", { value: "before", text: "before due" }),
    el("option", { value: "at", text: "at a time" }),
  );
  const before = parseBefore(reminder.before);
  const amount = el("input", {
    type: "number",
    min: "0",
    step: "1",
    name: `reminders.${n}.before`,
    value: String(before.amount),
    "aria-label": `Reminder ${n + 1}: how long before`,
  });
  const unit = el(
    "select",
    { name: `reminders.${n}.unit`, "aria-label": `Reminder ${n + 1}: unit` },
    ...["minutes", "hours", "days"].map((u) => el("option", { value: u, text: u })),
  );
  unit.value = before.unit;
  const at = el("input", {
    type: "datetime-local",
    step: "1",
    name: `reminders.${n}.at`,
    "aria-label": `Reminder ${n + 1}: at`,
  });
  if (reminder.at) at.value = localInput(new Date(reminder.at), zone);
  kind.value = reminder.at ? "at" : "before";
  const sync = () => {
    const isAt = kind.value === "at";
    amount.hidden = unit.hidden = isAt;
    at.hidden = !isAt;
  };
  kind.addEventListener("change", sync);
  sync();
  const row = el(
    "div",
    { class: "reminder", "data-reminder": String(n) },
    kind,
    amount,
    unit,
    at,
    el("button", {
      type: "button",
      class: "link",
      text: "Remove",
      "aria-label": `Remove reminder ${n + 1}`,
      onclick: () => row.remove(),
    }),
    el("p", { class: "field-error", "data-error-for": `reminders.${n}` }),
  );
  return row;
}

function readReminders(zone) {
  const out = [];
  const problems = {};
  const urgent = form.elements.urgent.checked;
  reminderBox.querySelectorAll(".reminder").forEach((row) => {
    const n = row.dataset.reminder;
    const kind = row.querySelector(`[name="reminders.${n}.kind"]`).value;
    if (kind === "at") {
      const value = row.querySelector(`[name="reminders.${n}.at"]`).value;
      const at = value ? instantOf(value, zone) : null;
      if (!at || Number.isNaN(at.getTime())) problems[`reminders.${n}`] = "Pick the reminder's date and time.";
      else out.push({ at: at.toISOString(), urgent });
    } else {
      const raw = row.querySelector(`[name="reminders.${n}.before"]`).value;
      const amount = Number(raw);
      const unit = row.querySelector(`[name="reminders.${n}.unit"]`).value;
      if (raw === "" || !Number.isInteger(amount) || amount < 0 || amount > 100000) {
        problems[`reminders.${n}`] = "Enter a whole number of minutes, hours or days (0 or more).";
      } else {
        const before = unit === "days" ? `P${amount}D` : unit === "hours" ? `PT${amount}H` : `PT${amount}M`;
        out.push({ before, urgent });
      }
    }
  });
  return { reminders: out, problems };
}

function showDates(dates, zone) {
  const box = document.getElementById("preview-box");
  document.getElementById("preview").replaceChildren(
    ...dates.map((d) => el("li", {}, el("time", { datetime: d, text: formatWhen(d, zone) }))),
  );
  document.getElementById("preview-zone").textContent = zone === state.zone ? "" : `(${zone})`;
  box.hidden = dates.length === 0;
}

async function showPreview(taskId) {
  try {
    const found = await api("GET", `/api/tasks/${encodeURIComponent(taskId)}/occurrences?count=5`);
    showDates(found.due_at, state.zone);
  } catch {
    document.getElementById("preview-box").hidden = true;
  }
}

const previewSlot = (field) => form.querySelector(`[data-error-for="${field}"]`);
let previewTimer = null;
let previewTicket = 0;

/** The preview of the rule being edited, from POST /api/recurrence/preview (nothing saved). */
async function livePreview() {
  const ticket = ++previewTicket;
  const rule = chosenRule();
  const date = form.elements.date.value;
  const zone = form.elements.timezone.value.trim() || state.zone;
  previewSlot("recurrence").textContent = "";
  if (repeat.value === "after" || !rule || !date) {
    document.getElementById("preview-box").hidden = true;
    document.body.dataset.preview = "none";
    return;
  }
  const body = { recurrence: rule, due_at: `${date}T${withSeconds(form.elements.time.value || "09:00")}`, timezone: zone, count: 5 };
  try {
    const found = await api("POST", "/api/recurrence/preview", body);
    if (ticket !== previewTicket) return;
    showDates(found.due_at, found.timezone);
    document.body.dataset.preview = found.due_at.join(" ");
  } catch (e) {
    if (ticket !== previewTicket) return;
    document.getElementById("preview-box").hidden = true;
    const messages = errorMessages(e, ["recurrence", "due_at", "timezone"]);
    for (const [field, text] of Object.entries(messages)) {
      const slot = previewSlot(field) || previewSlot("recurrence");
      slot.textContent = text;
    }
    document.body.dataset.preview = "error";
  }
}

function schedulePreview() {
  clearTimeout(previewTimer);
  document.body.dataset.preview = "pending";
  previewTimer = setTimeout(livePreview, PREVIEW_MS);
}

function syncRepeat() {
  document.getElementById("rrule-field").hidden = repeat.value !== "custom";
  const after = repeat.value === "after";
  document.getElementById("after-field").hidden = !after;
  document.getElementById("after-unit-field").hidden = !after;
  document.getElementById("after-hint").hidden = !after;
}
repeat.addEventListener("change", syncRepeat);
for (const name of ["repeat", "recurrence", "date", "time", "timezone"]) {
  form.elements[name].addEventListener("input", schedulePreview);
  form.elements[name].addEventListener("change", schedulePreview);
}

/** "P3D", "P2W" or "PT4H" from the "again after" fields, or null when not a whole number. */
function readAfter() {
  const n = Number(form.elements.repeat_every.value);
  if (!Number.isInteger(n) || n < 1) return null;
  const unit = form.elements.repeat_unit.value;
  return unit === "weeks" ? `P${n}W` : unit === "hours" ? `PT${n}H` : `P${n}D`;
}

function showAfter(text) {
  const m = /^P(\d+)([DW])$|^PT(\d+)H$/.exec(text || "");
  form.elements.repeat_every.value = m ? m[1] || m[3] : "1";
  form.elements.repeat_unit.value = m ? (m[2] === "W" ? "weeks" : m[2] === "D" ? "days" : "hours") : "days";
}

const NEW_TASK = { id: null, title: "", description: "", priority: "medium", tags: [], timezone: null, reminders: [] };

/** Edit task `taskId`, or a new task (`taskId` null) starting from `draft`'s fields. */
async function openEditor(taskId, draft = {}) {
  let task;
  let series = null;
  try {
    task = taskId ? await api("GET", `/api/tasks/${encodeURIComponent(taskId)}`) : { ...NEW_TASK, ...draft };
    if (task.series_id) series = await api("GET", `/api/series/${encodeURIComponent(task.series_id)}`);
  } catch (e) {
    toast(e.message);
    return;
  }
  editing = { task, series };
  document.getElementById("edit-title").textContent = task.id ? "Edit task" : "New task";
  clearErrors(form);
  const zone = task.timezone || state.zone;
  form.elements.title.value = task.title;
  form.elements.description.value = task.description;
  form.elements.priority.value = task.priority;
  form.elements.tags.value = task.tags.join(", ");
  form.elements.timezone.value = task.timezone || "";
  form.elements.timezone.placeholder = `${state.zone} (yours)`;
  const local = task.local_due_at || (task.due_at ? localInput(new Date(task.due_at), zone) : "");
  form.elements.date.value = local ? local.slice(0, 10) : "";
  form.elements.time.value = local ? local.slice(11, 19) : "";
  reminderBox.replaceChildren();
  const own = task.reminders.filter((r) => !r.snooze);
  for (const r of own) reminderBox.append(reminderRow(r, zone));
  if (!task.id) reminderBox.append(reminderRow({ before: "PT0S" }, zone)); // as quick add does
  form.elements.urgent.checked = own.some((r) => r.urgent);
  const rule = series && series.active ? series.recurrence || "" : "";
  const bare = rule.replace(/^RRULE:/i, "");
  const preset = Object.entries(PRESETS).find(([k, r]) => k === bare.toLowerCase() || r === bare.toUpperCase());
  repeat.value = !rule ? "" : preset ? preset[0] : "custom";
  rrule.value = repeat.value === "custom" ? rule : "";
  const after = series && series.active ? series.repeat_after || "" : "";
  if (after) repeat.value = "after";
  showAfter(after);
  syncRepeat();
  const inSeries = Boolean(series && series.active);
  document.getElementById("scope-field").hidden = !inSeries;
  form.querySelector('[name="scope"][value="occurrence"]').checked = true;
  document.getElementById("ed-skip").hidden = !(inSeries && task.status === "open");
  document.getElementById("ed-stop").hidden = !inSeries;
  document.getElementById("preview-box").hidden = true;
  document.body.dataset.preview = "none";
  if (inSeries && series.recurrence) showPreview(task.id);
  dialog.showModal();
  form.elements.title.focus();
}

function chosenRule() {
  if (repeat.value === "custom") return rrule.value.trim();
  if (repeat.value === "after") return "";
  return repeat.value;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  const { task, series } = editing;
  clearErrors(form);
  const problems = {};
  const title = form.elements.title.value.trim();
  if (!title) problems.title = "Give the task a title.";
  const zoneInput = form.elements.timezone.value.trim();
  const zone = zoneInput || state.zone;
  if (zoneInput && !timeZones().includes(zoneInput) && zoneInput !== "UTC") {
    problems.timezone = `“${zoneInput}” is not a time zone name like Europe/Paris.`;
  }
  const date = form.elements.date.value;
  const time = form.elements.time.value;
  if (form.elements.date.validity.badInput) problems.date = "Enter a valid date.";
  if (time && !date) problems.date = "Pick a date for this time.";
  const rule = chosenRule();
  if (repeat.value === "custom" && !rule) problems.recurrence = "Write the rule, e.g. FREQ=WEEKLY;BYDAY=MO.";
  const after = repeat.value === "after" ? readAfter() : null;
  if (repeat.value === "after" && !after) problems.repeat_after = "Enter a whole number of days, weeks or hours (1 or more).";
  if ((rule || repeat.value === "after") && !date) problems.date = "A repeating task needs a due date.";
  const { reminders, problems: reminderProblems } = readReminders(zoneInput || state.zone);
  Object.assign(problems, reminderProblems);
  if (Object.keys(problems).length) return showErrors(form, problems);
  const tags = form.elements.tags.value
    .split(",")
    .map((t) => t.trim().replace(/^#/, ""))
    .filter(Boolean);
  const body = {
    title,
    description: form.elements.description.value,
    priority: form.elements.priority.value,
    tags,
    due_at: date ? `${date}T${withSeconds(time || "09:00")}` : null,
    timezone: zoneInput || null,
    reminders,
  };
  const oldRule = series && series.active ? series.recurrence || "" : "";
  const oldAfter = series && series.active ? series.repeat_after || "" : "";
  const norm = (r) => (PRESETS[r.toLowerCase()] || r).replace(/^RRULE:/i, "").toUpperCase();
  const ruleChanged = norm(rule) !== norm(oldRule) || (after || "") !== oldAfter;
  let scope = form.querySelector('[name="scope"]:checked')?.value || "occurrence";
  if (ruleChanged || !task.id) {
    body.recurrence = rule || null;
    body.repeat_after = after;
    if (task.series_id) scope = "series";
  }
  if (!task.series_id) scope = "occurrence";
  void zone;
  await busy(form, async () => {
    try {
      if (!task.id) {
        if (!body.recurrence) delete body.recurrence;
        if (!body.repeat_after) delete body.repeat_after;
        if (body.due_at === null) {
          delete body.due_at;
          delete body.reminders;
        }
        if (body.timezone === null) body.timezone = state.zone; // as quick add does
        const made = await api("POST", "/api/tasks", body);
        dialog.close();
        toast(`Added: ${made.title}`);
        await load();
        return;
      }
      const saved = await api(
        "PATCH",
        `/api/tasks/${encodeURIComponent(task.id)}?scope=${scope}`,
        body,
      );
      if (saved.series_id && rule) {
        editing.task = saved;
        await showPreview(saved.id);
      }
      dialog.close();
      toast("Saved");
      await load();
    } catch (e) {
      showErrors(form, errorMessages(e, TASK_FIELDS));
    }
  });
});

document.getElementById("add-reminder").addEventListener("click", () => {
  const row = reminderRow({ before: "PT10M" }, form.elements.timezone.value.trim() || state.zone);
  reminderBox.append(row);
  row.querySelector("select").focus();
});
document.getElementById("ed-cancel").addEventListener("click", () => dialog.close());
document.getElementById("qa-more").addEventListener("click", () => {
  const draft = { title: quick.elements.title.value.trim() };
  if (quick.elements.date.value) draft.local_due_at = `${quick.elements.date.value}T${withSeconds(quick.elements.time.value || "09:00")}`;
  openEditor(null, draft);
});
document.getElementById("ed-skip").addEventListener("click", async () => {
  try {
    await api("POST", `/api/tasks/${encodeURIComponent(editing.task.id)}/skip`);
    dialog.close();
    toast("Skipped this occurrence");
    await load();
  } catch (e) {
    showErrors(form, errorMessages(e, TASK_FIELDS));
  }
});
document.getElementById("ed-stop").addEventListener("click", async () => {
  try {
    await api("POST", `/api/series/${encodeURIComponent(editing.task.series_id)}/stop`);
    dialog.close();
    toast("The series stops after this occurrence");
    await load();
  } catch (e) {
    showErrors(form, errorMessages(e, TASK_FIELDS));
  }
});

// -- start ----------------------------------------------------------------------------------

async function start() {
  // the first view ("All open") needs no time zone: its tasks are asked for at once, beside
  // the session and the profile, not after them
  const first = api("GET", query(FIRST));
  first.catch(() => {});
  const ready = Promise.all([startPage(), userZone()]);
  // draw with the zone of the last visit without waiting for /api/me; drawn again if it moved
  let remembered = null;
  try {
    remembered = localStorage.getItem(ZONE_KEY);
  } catch {
    // storage refused: wait for the profile
  }
  if (remembered) {
    state.zone = remembered;
    document.getElementById("zone-name").textContent = remembered;
    await load(false, first);
  }
  const [, zone] = await ready;
  try {
    localStorage.setItem(ZONE_KEY, zone);
  } catch {
    // not remembered: the next visit waits for the profile
  }
  document.getElementById("zone-name").textContent = zone;
  if (zone !== remembered) {
    state.zone = zone;
    await load(false, remembered ? null : first);
  }
  document.getElementById("zones").replaceChildren(...timeZones().map((z) => el("option", { value: z })));
}

start();
