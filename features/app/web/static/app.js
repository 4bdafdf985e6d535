// The page: photos go to /api/profile in batches (JSON Lines, one line per photo as each is
// done, then the account summary); each photo is drawn as its line arrives.
"use strict";

const PHOTO = /\.(jpe?g|jpe|jfif|png|webp|avif|hei[cf]|gif|bmp|tiff?)$/i;  // what recommend.py reads from a folder
const PHOTO_KINDS = "JPEG, PNG, WebP, AVIF, HEIC, GIF, BMP or TIFF";
// a face box narrower than this on screen shows its tag only while pointed at: a crowd's tags
// covered its faces and each other
const SMALL_BOX = 36;
// the browser's "Failed to fetch" or "network error" when the server is down or stops mid-answer
const UNREACHABLE = "the server cannot be reached (stopped or restarting); try again once it is back";
// an answer that ends, without an error, before every photo of its batch has its line (a proxy
// that cut it short): its cards said "waiting…" for good
const CUT_SHORT = "the server's answer ended before this photo's line (cut short on the way); try again";
// how a photo's error begins when the server never looked at it (the page's own, or the
// server's when it stops: features/app/web/analyser.py, STOPPING); such a photo can be sent again
const NOT_ANALYSED = "not analysed";
// the photos of a drop its Stop button left unanswered
const STOPPED = "stopped on this page before its answer came";
// drop: the last drop made, retry: the last retry asked (each waits for the server's health;
// a drop or a run started meanwhile cancels a retry waiting, not the other way round); run:
// the drop being analysed (a new drop, a retry or Stop cancels the last: its late answers are
// ignored); left: its photos not analysed; files: its photos, in card order, sent again by a
// retry; model: the checksum of the model that answered it; batches: how many requests it
// took; perCategory: its products per category, as checked; summary: the summary of all of
// it, once there; stamp: when it was made, in the downloads' names
const state = { health: null, records: [], done: 0, failed: 0, left: 0, total: 0, drop: 0, retry: 0, run: 0,
                controller: null, files: [], model: "", batches: 0, perCategory: "", summary: null, stamp: "" };
const $ = (id) => document.getElementById(id);

// "1 photo", "12 photos".
function count(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

// A share as a whole percentage, or with the decimals (up to four) that keep one over 0 or
// under 1 from reading "0%" or "100%", as recommend.py's text (features/app/text.py,
// share_text): 1 photo of 251 read "0%".
function percent(share) {
  const inPercent = share * 100;
  let decimals = 0;
  while (decimals < 4 && share > 0 && share < 1 && [0, 100].includes(Number(inPercent.toFixed(decimals)))) decimals++;
  return `${inPercent.toFixed(decimals)}%`;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The focus handed to node, focusable from a script alone: a button that removes itself left
// it on <body>, the page's start.
function focusOn(node) {
  node.tabIndex = -1;
  node.focus();
}

// A button of a line that says why it is there (Ask again, Summarise again).
function button(text, click) {
  const node = element("button", "", text);
  node.type = "button";
  node.addEventListener("click", click);
  return node;
}

async function loadHealth() {
  const response = await reach("/api/health");
  if (!response.ok) throw await refused(response);  // the server's reason (a model it can no longer load)
  state.health = await response.json();
  const model = state.health.model;
  // the model told apart by its checksum, as its card and recommend.py's errors name it ("Model
  // 0.4.0" was the package's version, the same for every model trained with it)
  // and each label's threshold in words: it was only a mark's tooltip, which a phone cannot
  // point at (why is 0.47 a hat and 0.30 not?)
  const decided = model.labels.map((label) => `${label} at ${Number(model.thresholds[label].toFixed(4))} or more`);
  $("model").textContent = `img2recommender ${state.health.version}, model ${model.sha256.slice(0, 12)} labels `
    + `${decided.join(", ")}; trained ${model.trained_at ? model.trained_at.replace("T", " ").replace("Z", " UTC") : "(date unknown)"}`;
  const limits = state.health.limits;
  $("per-category").max = limits.max_per_category;
  $("limits").textContent = `Up to ${byteText(limits.max_photo_bytes, 1)} per photo; a drop of more than ${limits.max_photos} photos is sent in batches of ${limits.max_photos} and summarised whole.`;
}

// A byte count in MB from 1 MB up and in KB below.
function byteText(bytes, decimals) {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(decimals)} MB` : `${(bytes / 2 ** 10).toFixed(decimals)} KB`;
}

// A photo over the limit, said with its size (the server's 413, which cuts the photo short,
// names only the limit): the two sizes with the fewest decimals, from one, that tell them apart.
function overLimit(size, limit) {
  let decimals = 1;
  while (decimals < 9 && byteText(size, decimals) === byteText(limit, decimals)) decimals += 1;
  return `${byteText(size, decimals)} is over the limit of ${byteText(limit, decimals)} per photo`;
}

// Why a photo is not sent, at the limits the server last gave, or null.
function refusal(file, limits) {
  return file.size > limits.max_photo_bytes ? overLimit(file.size, limits.max_photo_bytes) : null;
}

// The record of a photo answered on the page, without the server's analysis: its error.
function errorRecord(file, error) {
  return { image: nameOf(file), width: null, height: null, faces: [], error };
}

// The Mac's AppleDouble files of a drop or a pick (._IMG_0001.JPG: the Finder's data of
// IMG_0001.JPG, beside every photo a Mac copied to a USB stick or a share), which recommend.py
// leaves out of a folder too (images.py's APPLE_DOUBLE: their first 4 bytes).
async function appleDoubles(files) {
  const double = await Promise.all(files.map((file) => file.name.startsWith("._")
    && file.slice(0, 4).arrayBuffer().then((start) => new Uint8Array(start).join() === "0,5,22,7", () => false)));
  return new Set(files.filter((_, i) => double[i]));
}

// A file no one put in a feed, not named among those not sent: a hidden one (a Mac's
// .DS_Store in every folder, anything in a .thumbnails folder) or the system's own, as
// recommend.py leaves them out of its warning (images.py's SYSTEM_FILES).
const SYSTEM_FILES = new Set(["Icon\r", "Thumbs.db", "desktop.ini"]);
function systemFile(file) {
  return nameOf(file).split("/").some((part) => part.startsWith(".")) || SYSTEM_FILES.has(file.name);
}

// A file in a hidden folder under the one dropped, which recommend.py --recursive does not
// read either: an Android camera's .thumbnails holds a copy of every photo.
function inHiddenFolder(file) {
  return nameOf(file).split("/").slice(1, -1).some((part) => part.startsWith("."));
}

// Every file under a dropped folder (browsers hand folders over as entries).
async function filesOf(entry) {
  if (entry.isFile) {
    const file = await new Promise((ok, fail) => entry.file(ok, fail));
    file.relativePath = entry.fullPath.replace(/^\//, "");  // as webkitRelativePath is for a picked folder
    return [file];
  }
  const reader = entry.createReader();
  const files = [];
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) return files;
    for (const child of batch) files.push(...await filesOf(child));
  }
}

// A photo's name on its card and in its record: with its folders inside the drop, so that
// 100APPLE/IMG_0001.JPG and 101APPLE/IMG_0001.JPG can be told apart (the server, which keeps
// no folder of an upload's name, answers both IMG_0001.JPG).
function nameOf(file) {
  return file.relativePath || file.webkitRelativePath || file.name;
}

// Name order as recommend.py's name_order: folder by folder, numbers by value (post_2.jpg
// before post_10.jpg, which came first), other characters by their code, the whole name last;
// the browser's locale order (case and accents left aside) put a drop in another order than
// the same folder's through recommend.py.
function byName(a, b) {
  const key = (name) => name.split("/").map((part) => part.split(/([0-9]+)/).map((run, i) => (i % 2 ? BigInt(run) : run)));
  const compare = (x, y, each) => {
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const order = each(x[i], y[i]);
      if (order) return order;
    }
    return x.length - y.length;
  };
  const plain = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  return compare(key(a), key(b), (x, y) => compare(x, y, plain)) || plain(a, b);
}

function photoCard(file, index) {
  const card = $("photo-template").content.firstElementChild.cloneNode(true);
  card.dataset.index = index;
  const img = card.querySelector("img");
  img.addEventListener("error", () => previewFromServer(card, img, file), { once: true });
  img.src = URL.createObjectURL(file);
  img.alt = nameOf(file);
  card.querySelector(".name").textContent = nameOf(file);
  card.querySelector(".status").textContent = "waiting…";
  card.querySelector(".faces").addEventListener("keydown", faceKeys);
  card.querySelector(".faces").addEventListener("focusin", faceFocused);
  $("photos").append(card);
  return card;
}

// The server's previews: at most one per worker asked at a time, beside the analysis; those
// that failed for the server's sake (down, stopping), asked again by Retry or their own button;
// controller: a new drop aborts the last one's (its cards are gone).
const previews = { waiting: [], running: 0, failed: [], controller: new AbortController() };

// A photo the browser cannot show (TIFF and HEIC, in Chromium), shown as the server reads it
// (/api/preview: upright, small, a JPEG): an iPhone's drop had cards without pictures, its
// faces told apart by their lists alone.  Until then, or if the server cannot either (a
// broken file), a line of text, not a broken image with its face boxes drawn over nothing.
function previewFromServer(card, img, file) {
  URL.revokeObjectURL(img.src);
  card.classList.add("no-preview");
  const note = element("p", "muted preview-note");
  img.closest(".frame").after(note);
  const tooLarge = refusal(file, state.health.limits);
  if (tooLarge) note.textContent = `(no preview: the browser cannot show this file, and it is not sent: ${tooLarge})`;
  else askPreview({ card, img, file, note });
}

function askPreview(job) {
  job.note.textContent = "(the browser cannot show this file: a preview is asked of the server)";
  previews.waiting.push(job);
  nextPreviews();
}

function nextPreviews() {
  while (previews.running < state.health.workers && previews.waiting.length) {
    previews.running += 1;
    preview(previews.waiting.shift(), previews.controller.signal).finally(() => { previews.running -= 1; nextPreviews(); });
  }
}

async function preview(job, signal) {
  const { card, img, file, note } = job;
  if (!card.isConnected || card.dataset.noPreview) return;  // a new drop replaced it, or its analysis failed
  const form = new FormData();
  form.append("photo", file, file.name);
  let again = true;  // the server's failure, not the photo's
  try {
    const answer = await reach("/api/preview", { method: "POST", body: form, signal });
    if (!answer.ok) {
      again = retryable(answer.status);
      throw await refused(answer);
    }
    const url = URL.createObjectURL(await answer.blob());
    img.addEventListener("load", () => { card.classList.remove("no-preview"); note.remove(); }, { once: true });
    img.addEventListener("error", () => { note.textContent = "(no preview: the browser shows neither this file nor the server's JPEG of it)"; }, { once: true });
    img.src = url;
  } catch (error) {
    if (!card.isConnected || card.dataset.noPreview) return;  // its error says why
    if (again) noPreviewYet(job, `the server made none: ${error.message}`);
    else note.textContent = `(no preview: the browser cannot show this file, and the server made none: ${error.message})`;
  }
}

// A preview not made for the server's sake or the page's (down, stopping; Stop), to be asked
// again: by its own button, or by Retry.
function noPreviewYet(job, why) {
  job.note.textContent = `(no preview yet: the browser cannot show this file, and ${why}) `;
  job.note.append(button("Ask again", () => {
    focusOn(job.card.querySelector(".name"));  // the button goes
    previews.failed = previews.failed.filter((failed) => failed !== job);
    askPreview(job);
  }));
  previews.failed.push(job);
}

// A photo the analysis could not use gets no preview: its error says why, once (its card said
// it twice, and a preview still waiting sent the file again to fail the same way).
function noPreviewFor(card) {
  card.dataset.noPreview = "yes";  // and a preview being asked now is not asked again
  previews.waiting = previews.waiting.filter((job) => job.card !== card);
  previews.failed = previews.failed.filter((job) => job.card !== card);
  card.querySelector(".preview-note")?.remove();
}

// Every preview that failed for the server's sake asked again (a retry: the server is back).
function previewsAgain() {
  const failed = previews.failed;
  previews.failed = [];
  failed.forEach(askPreview);
}

// The photos' cards gone (a new drop): their previews not asked any more, their pictures' memory freed.
function clearPhotos() {
  previews.controller.abort();
  Object.assign(previews, { waiting: [], failed: [], controller: new AbortController() });
  for (const img of $("photos").querySelectorAll("img")) URL.revokeObjectURL(img.src);
  $("photos").replaceChildren();
}

// A score and its label's threshold to two decimals, or as many more (up to the record's
// four) as it takes to tell them apart: 0.3556 and 0.3647 against 0.35665 all read "0.36",
// one face labelled and two not.
function apart(probability, threshold) {
  let decimals = 2;
  while (decimals < 4 && probability.toFixed(decimals) === threshold.toFixed(decimals)) decimals++;
  return [probability.toFixed(decimals), threshold.toFixed(decimals)];
}

function scoreBar(label, probability, threshold) {
  const bar = element("div", "bar");
  const track = element("div", "track");
  const fill = element("div", `fill ${label}`);
  fill.style.width = `${(probability * 100).toFixed(1)}%`;
  const [shown, thresholdShown] = apart(probability, threshold);
  const mark = element("div", "mark");
  mark.style.left = `${(threshold * 100).toFixed(1)}%`;
  mark.title = `threshold ${thresholdShown}`;
  // the score and its threshold to a screen reader too, in that order (the mark's title is
  // read only by pointing at it)
  track.setAttribute("role", "img");
  track.setAttribute("aria-label", `${shown}, threshold ${thresholdShown}`);
  track.append(fill, mark);
  const value = element("span", "", shown);
  value.setAttribute("aria-hidden", "true");  // said by the track
  bar.append(element("span", "", label), track, value);
  return bar;
}

function productList(products) {
  const list = element("ul", "products");
  for (const product of products) {
    const item = element("li", "product");
    // the reason without the name it ends with, which the card gives just above it
    const tail = ` → ${product.name}`;
    item.append(element("span", "price", `$${product.price.toFixed(2)}`),
                element("div", "name", product.name),
                element("div", "reason", product.reason.endsWith(tail) ? product.reason.slice(0, -tail.length) : product.reason));
    list.append(item);
  }
  return list;
}

// The account's products under a heading per line of products, in the order they come
// (strongest label first): a drop of sunglasses and caps gave one grid of six cards.
const LINES = { hat: "Hats", beard: "Beard care", eyewear: "Eyewear" };

function productsByLine(products) {
  const lines = element("div", "lines");
  for (const category of new Set(products.map((product) => product.category))) {
    lines.append(element("h3", "", LINES[category] ?? category),
                 productList(products.filter((product) => product.category === category)));
  }
  return lines;
}

function labelChips(face) {
  const chips = element("div", "labels");
  if (face.quality.status !== "ok") chips.append(element("span", "label none", `not judged: ${face.quality.reasons.join("; ")}`));
  else if (!face.labels.length) chips.append(element("span", "label none", "no label: no product"));
  for (const label of face.labels) chips.append(element("span", `label ${label}`, label));
  return chips;
}

// The face's types, most likely first, as recommend.py's text says them (features/app/text.py,
// format_types): "eyewear dark 0.93, clear 0.07; hat cap 0.81, ...; hat colour navy; beard
// ...", "full beard" (the page read "hat_colour", "full_beard"); a beard style with the decimals
// that tell it from the bar a style is seen at (0.499 not "0.50").
function typeLine(types) {
  const colour = types.hat_colour;
  const shown = (family, p) => family === "beard" ? apart(p, state.health.model.style_seen)[0] : p.toFixed(2);
  const parts = Object.entries(types).flatMap(([family, values]) => {  // the colour where the hat is
    if (family === "hat_colour") return "hat" in types ? [] : [`hat colour ${colour}`];
    const line = `${family} ${Object.entries(values).map(([name, p]) => `${name.replaceAll("_", " ")} ${shown(family, p)}`).join(", ")}`;
    return family === "hat" && colour ? [line, `hat colour ${colour}`] : [line];
  });
  return element("p", "types muted", parts.join("; "));
}

// A face's box and its line in the list lit together while either is pointed at or focused
// (which of a crowd's 84 faces is "14."?).
function linked(box, item) {
  for (const node of [box, item]) {
    for (const [on, lit] of [["mouseenter", true], ["mouseleave", false], ["focusin", true], ["focusout", false]]) {
      node.addEventListener(on, () => { box.classList.toggle("lit", lit); item.classList.toggle("lit", lit); });
    }
  }
}

function strongest(face) {
  return face.labels.reduce((best, label) => (best && face.scores[best] >= face.scores[label] ? best : label), null);
}

function showRecord(card, record) {
  card.querySelector(".name").textContent = record.image;
  if (record.error) {
    const broken = !unanalysed(record);  // something wrong with the photo, or nothing
    card.classList.add(broken ? "error" : "unanalysed");
    card.querySelector(".status").textContent = broken ? `error: ${record.error}` : record.error;
    if (broken) noPreviewFor(card);
    return;
  }
  const faces = record.faces.length;
  card.querySelector(".status").textContent = `${record.width}×${record.height}: ${faces || "no"} face${faces === 1 ? "" : "s"}`;
  const note = element("span", "muted annotated-note");
  const picture = button("Annotated picture", () => annotatedPicture(card, picture, note));
  picture.classList.add("annotated");
  const actions = element("p", "actions");
  actions.append(picture, " ", note);
  card.querySelector(".status").after(actions);
  const boxes = card.querySelector(".boxes");
  const list = card.querySelector(".faces");
  const thresholds = state.health.model.thresholds;
  record.faces.forEach((face, number) => {
    const [left, top, right, bottom] = face.box;
    const box = element("div", `box ${strongest(face) || ""}`);
    Object.assign(box.style, {
      left: `${(100 * left) / record.width}%`, top: `${(100 * top) / record.height}%`,
      width: `${(100 * (right - left)) / record.width}%`, height: `${(100 * (bottom - top)) / record.height}%`,
    });
    box.append(element("span", "", `#${number + 1}`));
    boxes.append(box);
    const item = element("li", `face${face.quality.status === "ok" ? "" : " unjudged"}`
      + `${face.recommendations.length ? "" : " no-products"}`);
    item.value = number + 1;  // its box's number, with the faces above it hidden or not
    item.tabIndex = -1;  // the list's tab stop: tabStop
    item.append(element("span", "visually-hidden", `Face #${number + 1}: `));  // its box's tag, to a screen reader
    linked(box, item);
    for (const [label, probability] of Object.entries(face.scores)) item.append(scoreBar(label, probability, thresholds[label]));
    item.append(labelChips(face));
    if (Object.keys(face.types).length) item.append(typeLine(face.types));
    item.append(productList(face.recommendations));
    list.append(item);
  });
  tabStop(list);
  // said while "list only the faces with products" leaves its list empty (a card read "3 faces"
  // above nothing)
  if (faces && !record.faces.some((face) => face.recommendations.length)) {
    list.after(element("p", "muted none-with-products", `(no product for ${faces === 1 ? "its face" : `any of its ${faces} faces`})`));
  }
  const frame = card.querySelector(".frame");
  markSmall(frame);
  resized.observe(frame);
}

// A photo's annotated copy, as recommend.py --annotate draws it (/api/annotate), saved as
// NAME-annotated.jpg: the picture a campaign shares, and a crowd's faces seen at full size with
// its legend (on the card a group photo is 250 px wide). Asked of the model the drop was
// analysed with, and with its products per category.
async function annotatedPicture(card, picture, note) {
  // as the card was answered: a drop made meanwhile has its own products per category and model
  const [file, perCategory, model] = [state.files[Number(card.dataset.index)], state.perCategory, state.model];
  picture.disabled = true;  // one picture at a time: each click cost a worker a photo
  note.textContent = "drawing…";
  try {
    await loadHealth();  // a server restarted since with another model would draw another answer
    if (otherModel(model)) throw new Error(otherModel(model));
    const form = new FormData();
    form.append("photo", file, file.name);
    const answer = await reach(`/api/annotate?per_category=${perCategory}`, { method: "POST", body: form });
    if (!answer.ok) throw await refused(answer);
    const jpeg = await answer.blob();
    if (card.isConnected) download(`${file.name.replace(/\.[^.]*$/, "")}-annotated.jpg`, jpeg, "image/jpeg");
    note.textContent = "";
  } catch (error) {
    note.textContent = `No annotated picture: ${error.message}`;
  } finally {
    picture.disabled = false;
  }
}

// One tab stop per photo's list of faces, on a face shown, not one per face (two crowds made
// 114 stops): the arrow keys move it between the faces, Home and End to the first and the last.
function tabStop(list) {
  const shown = shownFaces(list);
  if (shown.some((item) => item.tabIndex === 0)) return;
  for (const item of list.children) item.tabIndex = -1;
  if (shown.length) shown[0].tabIndex = 0;
}

function faceKeys(event) {
  const shown = shownFaces(event.currentTarget);
  const at = shown.indexOf(document.activeElement);
  const to = shown[{ ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: shown.length - 1 }[event.key]];
  if (at < 0 || !to) return;
  event.preventDefault();  // not the page's scroll
  to.focus();
}

// A list's faces not hidden by the filter.
function shownFaces(list) {
  return [...list.children].filter((item) => item.getClientRects().length);
}

// The tab stop on the face focused, by the keys or a click (a click left it on the first
// face too: two stops).
function faceFocused(event) {
  for (const item of event.currentTarget.children) item.tabIndex = item === event.target ? 0 : -1;
}

// A photo's boxes marked small while narrower than SMALL_BOX on screen, and with their tag
// inside where the tag would stand above the photo (a face at its top edge: the card cut the
// tag off): as first drawn, and at every change of the photo's width (a window made
// narrower, a phone turned), where they kept the marks of their first width.
function markSmall(frame) {
  const rise = parseFloat(getComputedStyle(frame).getPropertyValue("--tag-rise"));  // in px: style.css's @property
  for (const box of frame.querySelectorAll(".box")) {
    box.classList.toggle("small", box.getBoundingClientRect().width < SMALL_BOX);
    box.classList.toggle("tag-inside", box.offsetTop + box.clientTop < rise);  // its tag's top above the photo
  }
}

const resized = new ResizeObserver((entries) => entries.forEach(({ target }) => markSmall(target)));

// Whether the server never looked at a record's photo (a retry sends it again).
function unanalysed(record) {
  return Boolean(record?.error?.startsWith(NOT_ANALYSED));
}

function notAnalysed(records) {
  return records.filter(unanalysed);
}

// The photos that failed among records, as the page counts them: their own error (refused for
// their size too), not those the server never looked at.
function failedIn(records) {
  return records.filter((record) => record.error && !unanalysed(record)).length;
}

// A batch's summary: its photos are the cards in its range (batch: first, last), the ones
// refused for their size (never sent) among the failed; with whole (the number of batches),
// the summary of a drop sent in several batches, above theirs.
function showSummary(summary, batch, whole = 0) {
  const box = element("div", "summary");
  const photos = batch.last - batch.first;
  // photos the server never looked at (it stopped, or could not be reached, or Stop was
  // pressed): the summary is of the others, and read as the account's whole answer; they are
  // not counted as failed (nothing was wrong with them)
  const left = notAnalysed(state.records.slice(batch.first, batch.last));
  const span = whole ? ` (${left.length ? `${photos - left.length} of ` : "all "}${count(photos, "photo")})`
    : state.total === photos ? "" : photos === 1 ? ` (photo ${batch.last})` : ` (photos ${batch.first + 1}–${batch.last})`;
  box.append(element("h2", "", `Account summary${span}: ${summary.headline}`));
  const unjudged = summary.faces - summary.faces_judged;
  box.append(element("p", "muted", `${count(photos, "photo")} (${failedIn(state.records.slice(batch.first, batch.last))} failed`
    + `${left.length ? `, ${left.length} not analysed` : ""}), `
    + `${count(summary.faces, "face")}${unjudged ? ` (${unjudged} not judged)` : ""}`));
  if (left.length) {
    box.append(element("p", "error-text", `Partial: ${left.length} of ${count(photos, "photo")} not analysed `
      + `(${left[0].error.slice(NOT_ANALYSED.length + 2)}): this summary leaves them out`));
  }
  const table = element("table");
  const head = element("tr");
  // the shares' bases: the photos analysed, not all of the range (a failed photo has no face),
  // and the faces judged (one not judged has no label, and a score not to be trusted)
  for (const title of ["label", `photos (of ${summary.photos})`, `faces judged (of ${summary.faces_judged})`,
                       "mean probability"]) {
    head.append(element("th", "", title));
  }
  table.append(head);
  // no share of nothing (null: "0%" of no face, a mean of 0.00 over none), as recommend.py's text
  const figure = (value, text) => (value === null ? "–" : text(value));
  for (const [label, stats] of Object.entries(summary.labels)) {
    const row = element("tr");
    row.append(element("td", "", label), element("td", "", figure(stats.photo_share, percent)),
               element("td", "", figure(stats.face_share, percent)),
               element("td", "", figure(stats.mean_probability, (mean) => mean.toFixed(2))));
    table.append(row);
  }
  box.append(table, productsByLine(summary.recommendations));
  if (whole || state.total === photos) state.summary = summary;
  // the batches' own summaries, which read as the account's, folded away below it (a batch
  // the server never answered has none; Stop in the first, none at all)
  const shown = $("summaries").querySelectorAll(".summary").length;
  if (whole && shown) {
    const folded = element("details", "batches");
    folded.append(element("summary", "", `Summaries per batch (${shown === whole ? whole : `${shown} of ${whole}`} batches)`),
                  ...$("summaries").children);
    $("summaries").replaceChildren(box, folded);
  } else $("summaries").append(box);
  buttons();
}

// A drop sent in several batches gets a summary of all its photos too (it had one per batch
// alone), made by the server from the records as /api/profile makes one (the refused photos'
// records are among them, counted as failed).
async function summariseDrop(run, signal, perCategory, batches) {
  let again = true;  // the server's failure, not the records'
  try {
    const answer = await reach(`/api/summary?per_category=${perCategory}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(state.records), signal });
    if (!answer.ok) {
      again = retryable(answer.status);
      throw await refused(answer);
    }
    const summary = await answer.json();
    if (run === state.run) showSummary(summary.profile, { first: 0, last: state.total }, batches);
  } catch (error) {
    if (run !== state.run) return;
    const said = element("p", "error-text", `No summary of all the photos: ${error.message}`);
    $("summaries").prepend(said);
    if (!again) return;  // records refused (a server restarted with another model) are refused again
    // asked again on request (the server back): the drop's summary was lost, and its download
    said.append(" ", button("Summarise again", () => {
      focusOn($("summaries"));  // the button goes
      said.remove();
      summariseDrop(state.run, state.controller.signal, perCategory, batches);
    }));
  }
}

// The summary of the drop as its file: a partial one names the photos it leaves out (its
// profile counts them), as the page says it is partial; its failed are the page's, which has
// the photos refused for their size (never sent: a drop of one batch has the server's summary
// of the others) among them.
function summaryFile() {
  const left = notAnalysed(state.records).map((record) => record.image);
  return JSON.stringify({ profile: { ...state.summary, failed: failedIn(state.records) },
                          ...(left.length ? { not_analysed: left } : {}) }, null, 2) + "\n";
}

function progress() {
  $("progress").max = state.total;
  // the bar fills with the photos the server answered: after Stop, or a server stopped
  // mid-drop, it was full over photos never looked at
  $("progress").value = state.done - state.left;
  // the failed and those not analysed said beside the count: a server stopped mid-drop read
  // "152 of 152 photos", its 115 unanswered cards to be found by scrolling; then "(115
  // failed)", though nothing was wrong with them
  const said = [[state.failed - state.left, "failed"], [state.left, "not analysed"]].filter(([n]) => n).map((part) => part.join(" "));
  // and the count is of the photos answered, as the bar: "60 of 60 photos (15 not analysed)"
  // after a Stop read as a drop done
  $("progress-text").textContent = `${state.done - state.left} of ${count(state.total, "photo")}`
    + `${said.length ? ` (${said.join(", ")})` : ""}`;
  if (state.done === state.total) {
    $("announce").textContent = `Done: ${$("progress-text").textContent}`;
    // "still being analysed" stood beside "Done" until the next drop
    if ($("drop-error").dataset.untilDone) $("drop-error").textContent = $("drop-error").dataset.untilDone = "";
  }
  buttons();
}

// What the buttons beside the progress bar offer: the downloads once every photo has its
// answer, Stop until then, and then a retry of the photos the server never looked at.
function buttons() {
  const finished = state.done === state.total;
  const focused = document.activeElement;
  $("download-jsonl").disabled = $("download-csv").disabled = !finished;
  $("download-summary").disabled = !(finished && state.summary);
  $("stop").hidden = finished;
  // photos are added to a drop shown (once it is done: analyse() says so before)
  $("add").disabled = !state.total;
  $("retry").hidden = !(finished && state.left);
  $("retry").textContent = `Retry the ${count(state.left, "photo")} not analysed`;
  // a button pressed or focused that hides itself hands the focus on (it fell to the page's
  // start): Stop to Retry, or to the first download once the drop is done; Retry to Stop
  if (focused?.hidden) [$("stop"), $("retry"), $("download-jsonl")].find((button) => !button.hidden)?.focus();
}

function answer(index, card, record) {
  state.records[index] = record;
  showRecord(card, record);
  state.done += 1;
  if (record.error) state.failed += 1;
  if (unanalysed(record)) state.left += 1;
  progress();
}

// One batch: the server streams a line per photo, in order, then {"profile": ...}; an answer
// that comes after a new drop (run) started is not this page's any more. A batch of a retry
// or of photos added (noOwnSummary) shows no summary of its own: the drop's replaces it.
async function analyseBatch(batch, run, signal, perCategory) {  // perCategory: as checked at the drop
  const form = new FormData();
  for (const { file } of batch.queued) form.append("photos", file, file.name);
  let next = 0;
  try {
    const response = await reach(`/api/profile?format=jsonl&per_category=${perCategory}`, { method: "POST", body: form, signal });
    if (!response.ok) throw await refused(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read().catch((error) => { throw unreachable(error); });
      if (done || run !== state.run) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const data = JSON.parse(line);
        if (data.profile) { if (!batch.noOwnSummary) showSummary(data.profile, batch); }
        else { const { index, card, file } = batch.queued[next++]; answer(index, card, { ...data, image: nameOf(file) }); }
      }
    }
    if (next < batch.queued.length) throw new Error(CUT_SHORT);
  } catch (error) {
    if (run !== state.run) return;  // aborted by a new drop
    for (const { index, card, file } of batch.queued.slice(next)) {
      answer(index, card, errorRecord(file, `${NOT_ANALYSED}: ${error.message}`));
    }
  }
}

// fetch, whose failure to reach the server (the browser's TypeError, "Failed to fetch") is said
// in words a user can act on; a new drop's abort stays what it is.
async function reach(url, options) {
  try {
    return await fetch(url, options);
  } catch (error) {
    throw unreachable(error);
  }
}

// Whether a refusal is the server's state, not the request's, so that the same request may
// succeed later: a server error (a proxy's too: 502, 504), a timeout, too many requests.
function retryable(status) {
  return status >= 500 || [408, 429].includes(status);
}

// A refusal as an Error: the server's one line (its detail; said: true), else the status (a
// proxy's page: its 502 while the server is down, where the server itself said nothing).
async function refused(response) {
  const detail = (await response.json().catch(() => ({}))).detail;
  return Object.assign(new Error(detail || `${response.status} ${response.statusText}`), { said: Boolean(detail) });
}

function unreachable(error) {
  return error.name === "AbortError" ? error : new Error(UNREACHABLE);
}

// A drop's batches: at most max_photos photos sent in each, in card order, their cards from
// index start on; a photo over the size limit is answered here, not sent, and belongs to the
// batch whose range of cards holds it (first: the first card's index, last: one past the last card's).
function batchesOf(photos, limits, start = 0) {
  const batches = [];
  photos.forEach((file, offset) => {
    const index = start + offset;
    const refused = refusal(file, limits);
    let batch = batches.at(-1);
    if (!batch || (!refused && batch.queued.length === limits.max_photos)) {
      batch = { first: index, queued: [] };
      batches.push(batch);
    }
    batch.last = index + 1;
    const card = photoCard(file, index);
    if (refused) answer(index, card, errorRecord(file, refused));
    else batch.queued.push({ index, card, file });
  });
  return batches;
}

// A new drop cancels the one still being analysed: its request is aborted, its loop over
// batches stops, and whatever of it still arrives is ignored; with "add to the photos shown"
// ticked (a drop done), its photos are added to those shown instead.
async function analyse(files) {
  const adding = $("add").checked && !$("add").disabled;  // as at the drop, not once the server answers
  const drop = ++state.drop;  // taken first: the last drop made is the one analysed, whatever its reads take
  const doubles = await appleDoubles(files);
  if (drop !== state.drop) return;
  const photos = files.filter((file) => !doubles.has(file) && !inHiddenFolder(file)
    && (PHOTO.test(file.name) || file.type.startsWith("image/"))).sort((a, b) => byName(nameOf(a), nameOf(b)));
  // a drop of a Mac's AppleDouble files alone (a stick's ._ files picked by name) says what they are
  const macs = [...doubles].map(nameOf);
  const said = macs.length ? `: ${macs.slice(0, 3).join(", ")}${macs.length > 3 ? ", …" : ""} `
    + (macs.length === 1 ? "is a Mac's AppleDouble file (Finder data kept beside a photo), not a photo"
      : "are a Mac's AppleDouble files (Finder data kept beside photos), not photos") : "";
  $("drop-error").textContent = photos.length ? ""
    : files.length ? `No photo among the ${files.length} file(s) (${PHOTO_KINDS})${said}` : "No file in what was dropped or picked";
  $("drop-error").dataset.untilDone = "";  // each drop says its own
  if (!photos.length) return;
  // said, not left out without a word (a photo without its suffix); a file no one put there
  // (systemFile) is not
  const sent = new Set(photos);
  const skipped = files.filter((file) => !sent.has(file) && !doubles.has(file) && !systemFile(file)).map(nameOf);
  if (skipped.length) {
    $("drop-error").textContent = `${count(skipped.length, "file")} not sent, not ${skipped.length === 1 ? "a photo" : "photos"} `
      + `(${PHOTO_KINDS}): ${skipped.slice(0, 3).join(", ")}${skipped.length > 3 ? ", …" : ""}`;
  }
  // asked at every drop, before anything on the page goes: a drop while the server was down
  // wiped the results shown for a card saying so, and a server restarted with other limits
  // failed every photo of a tab opened before ("over the limit of 8 photos per request")
  try {
    await loadHealth();
  } catch (error) {  // the drop did nothing, and the console said "Uncaught TypeError: Failed to fetch"
    if (drop === state.drop) $("drop-error").textContent = `Nothing was sent: ${error.message}`;
    return;
  }
  if (drop !== state.drop) return;
  if (adding) {
    // a drop or a retry still running would be cut off by this one's run, its cards left waiting
    if (state.done !== state.total) {
      $("drop-error").textContent = `Not added (${count(photos.length, "photo")}): the photos shown are still being `
        + `analysed; drop them again once they are done (or untick "add to the photos shown" to replace them)`;
      $("drop-error").dataset.untilDone = "1";
    } else await addPhotos(photos);
    return;
  }
  // checked once the server has answered, as the box may have changed meanwhile; said once,
  // here, not on every photo's card (the server refused each of them for it); an empty box
  // is the server's default, said in the box
  const perCategory = $("per-category");
  if (perCategory.value === "") perCategory.value = state.health.defaults.per_category;
  if (!perCategory.checkValidity()) {
    $("drop-error").textContent = `Products per category: a whole number from ${perCategory.min} to ${perCategory.max}`;
    return;
  }
  // for every batch (the box may change meanwhile), as a number: "1e1" passed the box's check
  // and the server refused it for every photo
  const perCategoryChecked = String(perCategory.valueAsNumber);
  const [run, signal] = newRun();
  clearPhotos();
  $("summaries").replaceChildren();
  $("download-error").textContent = "";
  $("progress-box").hidden = false;
  $("announce").textContent = $("per-category-note").textContent = "";
  Object.assign(state, { records: new Array(photos.length), done: 0, failed: 0, left: 0, total: photos.length,
                         summary: null, files: photos, model: state.health.model.sha256, batches: 0,
                         perCategory: perCategoryChecked,
                         stamp: new Date().toISOString().slice(0, 19).replace("T", "-").replaceAll(":", "") });
  progress();
  const batches = batchesOf(photos, state.health.limits);
  state.batches = batches.length;
  for (const batch of batches) {
    if (run !== state.run) return;
    if (batch.queued.length) await analyseBatch(batch, run, signal, perCategoryChecked);
  }
  if (batches.length > 1 && run === state.run) await summariseDrop(run, signal, perCategoryChecked, batches.length);
}

// Photos added to a drop that is done: their cards after those shown (in name order among
// themselves), sent in batches with the drop's products per category, then one summary of all
// the drop's photos replaces those shown, as after a retry (the downloads hold them all);
// refused if the server now answers with another model (one drop, two models).
async function addPhotos(photos) {
  const other = otherModel();
  if (other) {
    $("drop-error").textContent = `Not added: ${other}; untick "add to the photos shown" and drop all the photos again`;
    return;
  }
  // said, not refused: a feed may post a picture twice, and each post counts (as recommend.py)
  const shown = new Set(state.files.map((file) => `${nameOf(file)}\n${file.size}`));
  const again = photos.filter((file) => shown.has(`${nameOf(file)}\n${file.size}`)).map(nameOf);
  if (again.length) {
    $("drop-error").textContent = `${count(again.length, "photo")} already shown added again (each post counts): `
      + `${again.slice(0, 3).join(", ")}${again.length > 3 ? ", …" : ""}`;
  }
  const [run, signal] = newRun();
  const start = state.total;
  state.files.push(...photos);
  state.records.length = start + photos.length;
  Object.assign(state, { total: start + photos.length, batches: 0, summary: null });
  $("summaries").replaceChildren();
  $("announce").textContent = $("download-error").textContent = "";
  progress();
  for (const batch of batchesOf(photos, state.health.limits, start)) {
    if (run !== state.run) return;
    if (batch.queued.length) await analyseBatch({ ...batch, noOwnSummary: true }, run, signal, state.perCategory);
  }
  if (run === state.run) await summariseDrop(run, signal, state.perCategory, 0);
}

// Why photos cannot join the drop shown (or a card's picture be drawn for it), if they cannot:
// a server restarted since with another model would answer them with it (one drop, two
// models); model: the drop's.
function otherModel(model = state.model) {
  return state.health.model.sha256 === model ? ""
    : `the server now answers with another model (${state.health.model.sha256.slice(0, 12)}, `
      + `not ${model.slice(0, 12)})`;
}

// A new run (a drop, a retry, a stop): the one before is cancelled, its request aborted and
// whatever of it still arrives ignored.
function newRun() {
  state.controller?.abort();
  state.controller = new AbortController();
  return [++state.run, state.controller.signal];
}

// Stop: the photos still waiting are not analysed (a retry sends them), and the photos
// answered so far are summarised, the summary saying it is partial (a drop of one request
// had none: its summary comes after its last photo).
async function stop() {
  const [run, signal] = newRun();
  const cards = $("photos").children;
  for (let index = 0; index < state.total; index++) {
    if (!state.records[index]) {
      answer(index, cards[index], errorRecord(state.files[index], `${NOT_ANALYSED}: ${STOPPED}`));
    }
  }
  // the previews not asked yet are not asked (each photo would be sent again for one)
  previews.waiting.splice(0).forEach((job) => noPreviewYet(job, "Stop was pressed before it was asked"));
  $("announce").textContent = `Stopped: ${$("progress-text").textContent}`;
  if (state.left < state.total) {
    await summariseDrop(run, signal, state.perCategory, state.batches > 1 ? state.batches : 0);
  }
}

// Retry: the photos the server never looked at are sent again, in batches as a drop's, each
// card answered in place; the others keep their answers, and one summary of the whole drop
// replaces the summaries shown (one of a batch was of the photos answered then).
async function retry() {
  const [drop, run0, asked] = [state.drop, state.run, ++state.retry];
  const current = () => drop === state.drop && run0 === state.run && asked === state.retry;
  // said beside the button pressed, not above the drop zone, a screen or more away
  $("download-error").textContent = "";
  try {
    await loadHealth();
  } catch (error) {
    if (current()) $("download-error").textContent = `Nothing was sent: ${error.message}`;
    return;
  }
  if (!current()) return;
  previewsAgain();  // whatever the model: a preview is the photo, not its analysis
  const other = otherModel();
  if (other) {
    $("download-error").textContent = `Not sent: ${other}; drop all the photos again`;
    return;
  }
  const [run, signal] = newRun();
  const cards = $("photos").children;
  const again = state.records.flatMap((record, index) => (unanalysed(record)
    ? [{ index, card: cards[index], file: state.files[index] }] : []));
  for (const { index, card } of again) {
    state.records[index] = undefined;
    card.classList.remove("unanalysed");
    card.querySelector(".status").textContent = "waiting…";
    card.querySelector(".boxes").replaceChildren();
    card.querySelector(".faces").replaceChildren();
  }
  Object.assign(state, { done: state.done - again.length, failed: state.failed - again.length,
                         left: state.left - again.length, batches: 0, summary: null });
  $("summaries").replaceChildren();
  progress();
  // a photo over a limit lowered since the drop is said on its card, as at a drop (sent, its
  // 413 failed every photo of its request, at every retry)
  const limits = state.health.limits;
  const queued = again.filter(({ index, card, file }) => {
    const refused = refusal(file, limits);
    if (refused) answer(index, card, errorRecord(file, refused));
    return !refused;
  });
  for (let first = 0; first < queued.length; first += limits.max_photos) {
    if (run !== state.run) return;
    await analyseBatch({ queued: queued.slice(first, first + limits.max_photos), noOwnSummary: true }, run, signal,
                       state.perCategory);
  }
  if (run === state.run) await summariseDrop(run, signal, state.perCategory, 0);
}

// CSV: one row per face (one per photo without a face), made by the server from the records
// with the columns of recommend.py --output's Parquet.
async function csvText(records) {
  const answer = await reach("/api/csv", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(records) });
  if (!answer.ok) throw await refused(answer);
  return answer.text();
}

function download(name, text, type) {
  const link = element("a");
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

function wire() {
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const entries = [...event.dataTransfer.items].map((item) => item.webkitGetAsEntry()).filter(Boolean);
    const read = await Promise.allSettled(entries.map(filesOf));  // a folder the browser may not read
    analyse(read.flatMap((result) => result.value || []));
    const failed = read.filter((result) => result.status === "rejected");
    if (failed.length) $("drop-error").textContent = `${count(failed.length, "dropped item")} could not be read, the rest are analysed: ${failed[0].reason.message}`;
  });
  for (const id of ["pick", "pick-folder"]) {
    $(id).addEventListener("change", (event) => { analyse([...event.target.files]); event.target.value = ""; });
  }
  // named by the drop's time (UTC), not all "results.csv", "results (1).csv", ...
  const named = (suffix) => `img2recommender-${state.stamp}-${count(state.total, "photo").replace(" ", "-")}${suffix}`;
  $("download-jsonl").addEventListener("click", () => download(named(".jsonl"), state.records.map((r) => JSON.stringify(r)).join("\n") + "\n", "application/x-ndjson"));
  $("download-summary").addEventListener("click", () => download(named("-summary.json"), summaryFile(), "application/json"));
  $("per-category").addEventListener("input", () => {  // the cards keep the products they were given
    $("per-category-note").textContent = state.total ? "(for the next new drop)" : "";
  });
  // a crowd's faces without a product hidden from the list (7 crowd photos: 190 faces, a
  // page 15,000 px long); their boxes stay
  $("only-products").addEventListener("change", (event) => {
    $("photos").classList.toggle("only-products", event.target.checked);
    $("photos").querySelectorAll(".faces").forEach(tabStop);  // not on a face hidden
  });
  $("stop").addEventListener("click", stop);
  $("retry").addEventListener("click", retry);
  $("download-csv").addEventListener("click", async () => {
    $("download-error").textContent = "";
    try {
      // behind a byte-order mark: Excel reads a CSV without one in the system's code page
      // ("Café.jpg" read "CafÃ©.jpg"); the API's CSV, for programs, has none
      download(named(".csv"), `\ufeff${await csvText(state.records)}`, "text/csv");
    } catch (error) {
      $("download-error").textContent = `The CSV could not be made: ${error.message}`;
    }
  });
  loadHealth().then(() => { $("per-category").value ||= state.health.defaults.per_category; })
    // a server that says it cannot analyse (a model its workers cannot load) did answer
    .catch((error) => {
      $("model").textContent = `${error.said ? "The server cannot analyse photos" : "No answer from the server"}: ${error.message}`;
    });
}

wire();
