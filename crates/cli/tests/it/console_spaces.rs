//! Spaces and items in the console, in a real browser: the list with link badges, create,
//! rename, delete behind a confirmation, a space's items, an item's rows a page at a time with
//! filters, and exports equal to the API's.

use crate::console::Browser;
use crate::harness::{TestInstance, open_policies, peered, points_geojson, wait_for};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spaces_and_items_are_browsed_and_managed_by_clicking() {
    let city = TestInstance::start_with(|c| c.title = "City GIS".into()).await;
    let harbor = TestInstance::start_with(|c| c.title = "Harbor".into()).await;
    open_policies(&city);
    open_policies(&harbor);
    city.create_space("roads").await;
    harbor.create_space("inbox").await;
    peered(&city, &harbor, "features", &[]);
    let (status, layer) = city
        .import(
            "space=roads&title=Berths",
            "application/geo+json",
            points_geojson(120),
        )
        .await;
    assert_eq!(status, 201, "{layer}");
    let layer_id = layer["id"].as_str().unwrap().to_string();
    wait_for("the layer reaches Harbor", || async {
        harbor
            .get("/api/v1/items?space=inbox")
            .await
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;

    let browser = Browser::start().await;
    browser.sign_in(&city.url, &city.admin_token).await;
    browser.click("nav a[href='/spaces']").await;
    let roads = browser.text_of("tr[data-space='roads']").await;
    assert!(
        roads.contains("Peer: Harbor") && roads.contains('1'),
        "{roads}"
    );
    let api = city.get("/api/v1/spaces/roads").await;
    assert_eq!(api["links"][0]["kind"], "peer", "{api}");
    assert_eq!(api["links"][0]["name"], "Harbor");
    assert_eq!(api["links"][0]["mode"], "active");
    browser.screenshot("spaces").await;

    // A refused name says why and keeps what was typed; a good one makes the space.
    browser.fill("space-name", "bad name!").await;
    browser.click("#create-space").await;
    assert!(browser.text_of(".error").await.contains("invalid_request"));
    assert_eq!(browser.value_of("#space-name").await, "bad name!");
    browser.fill("space-name", "scratch").await;
    browser.fill("space-description", "For trials").await;
    browser.click("#create-space").await;
    assert_eq!(browser.path().await, "/spaces/scratch");
    assert_eq!(
        city.get("/api/v1/spaces/scratch").await["description"],
        "For trials"
    );

    // Rename, then delete behind a confirmation.
    browser
        .client
        .find(Locator::Css("details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.fill("rename-name", "trials").await;
    browser.click("#save-space").await;
    assert_eq!(browser.path().await, "/spaces/trials");
    browser.click("#delete-space").await;
    assert!(
        browser
            .text_of("#consequences")
            .await
            .contains("It holds no item")
    );
    browser.click("#confirm-delete").await;
    assert!(browser.text_of(".notice").await.contains("trials"));
    let (status, _) = city
        .call(reqwest::Method::GET, "/api/v1/spaces/trials", None)
        .await;
    assert_eq!(status, 404);

    // A linked space is not deleted: the confirmation says so, and the refusal has its code.
    browser
        .goto(&format!("{}/spaces/roads/delete", city.url))
        .await;
    assert!(
        browser
            .text_of("#consequences")
            .await
            .contains("cannot be deleted")
    );
    browser.click("#confirm-delete").await;
    assert!(browser.text_of(".error").await.contains("space_linked"));
    assert_eq!(
        city.get("/api/v1/items?space=roads")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Uploads: a CSV becomes a dataset with a progress bar at its end; a broken GeoJSON is
    // refused with its code and makes nothing.
    let work = tempfile::tempdir().unwrap();
    let csv = crate::harness::temp_file(
        work.path(),
        "quays.csv",
        b"id,name,depth\n1,North,12.5\n2,South,\n",
    );
    let broken = crate::harness::temp_file(
        work.path(),
        "broken.geojson",
        b"{\"type\":\"FeatureCollection\",\"features\":[{",
    );
    browser.goto(&format!("{}/spaces/roads", city.url)).await;
    let pick = |path: std::path::PathBuf| {
        let browser = &browser;
        async move {
            browser
                .client
                .find(Locator::Css("#upload-file"))
                .await
                .unwrap()
                .send_keys(path.to_str().unwrap())
                .await
                .unwrap();
        }
    };
    pick(csv).await;
    wait_for("the upload ends", || async {
        browser.has("#uploaded").await
    })
    .await;
    let progress = browser
        .client
        .execute(
            "return document.querySelector('#upload-progress').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(progress, serde_json::json!(100));
    assert!(browser.text_of("#upload-status").await.contains("(2 rows)"));
    let items = city.get("/api/v1/items?space=roads").await;
    let quays = items
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"] == "quays")
        .unwrap()
        .clone();
    assert_eq!(quays["kind"], "dataset");
    let rows = city
        .get(&format!(
            "/api/v1/items/{}/rows",
            quays["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(rows["rows"][0]["values"]["depth"], 12.5);
    assert!(rows["rows"][1]["values"]["depth"].is_null());
    pick(broken).await;
    wait_for("the refusal shows", || async {
        browser
            .text_of("#upload-status")
            .await
            .contains("code: malformed_geojson")
    })
    .await;
    assert_eq!(
        city.get("/api/v1/items?space=roads")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    browser.screenshot("space").await;

    // The space's items, and the layer's page: facts, schema, rows 50 at a time, a filter.
    browser.goto(&format!("{}/spaces/roads", city.url)).await;
    browser
        .click(&format!("tr[data-item='{layer_id}'] a"))
        .await;
    assert_eq!(browser.text_of("#row-count").await, "120");
    assert!(
        browser
            .text_of("#item-links")
            .await
            .contains("Peer: Harbor")
    );
    assert!(browser.text_of("#schema").await.contains("name"));
    let rows = browser
        .client
        .find_all(Locator::Css("#rows tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 50);
    assert!(browser.text_of("#rows tbody tr").await.starts_with("1 p1"));
    browser.screenshot_page("item").await;
    browser.click(".pager a[rel='next']").await;
    assert!(
        browser
            .text_of("#rows tbody tr")
            .await
            .starts_with("51 p51")
    );
    browser.fill("rows-where", "name:p7").await;
    browser.click("#filter-rows").await;
    let found = browser
        .client
        .find_all(Locator::Css("#rows tbody tr"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(
        browser
            .text_of("#rows tbody tr")
            .await
            .starts_with("7 p7 0 7.5 Point")
    );

    // The map: drawn from tiles, a feature where it should be, its properties on a click.
    browser
        .goto(&format!("{}/items/{layer_id}", city.url))
        .await;
    // Web Mercator stops at 85.05° of latitude: the 4 points nearer the pole are off the map.
    let drawn = || async {
        let canvas = browser
            .client
            .find(Locator::Css("canvas#map"))
            .await
            .unwrap();
        canvas.attr("data-drawn").await.unwrap().unwrap_or_default()
    };
    for _ in 0..100 {
        if !drawn().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        drawn().await,
        "116",
        "{}",
        browser.text_of("#map-status").await
    );
    let canvas = browser
        .client
        .find(Locator::Css("canvas#map"))
        .await
        .unwrap();
    let view: serde_json::Value =
        serde_json::from_str(&canvas.attr("data-view").await.unwrap().unwrap()).unwrap();
    // Feature 100 is at (-79.75, 10.25): where the map's Web Mercator puts it on the canvas.
    let world = |lon: f64, lat: f64, zoom: f64| {
        let scale = 256.0 * 2f64.powf(zoom);
        let sin = lat.to_radians().sin();
        let y = (0.5 - ((1.0 + sin) / (1.0 - sin)).ln() / (4.0 * std::f64::consts::PI)) * scale;
        ((lon + 180.0) / 360.0 * scale, y)
    };
    let zoom = view["zoom"].as_f64().unwrap();
    let (cx, cy) = world(
        view["lon"].as_f64().unwrap(),
        view["lat"].as_f64().unwrap(),
        zoom,
    );
    let (fx, fy) = world(-79.75, 10.25, zoom);
    let (sx, sy) = ((fx - cx + 480.0).round(), (fy - cy + 240.0).round());
    let pixel = |x: f64, y: f64| {
        let browser = &browser;
        async move {
            browser
                .client
                .execute(
                    "const d = document.getElementById('map').getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data; return [d[0], d[1], d[2]];",
                    vec![serde_json::json!(x), serde_json::json!(y)],
                )
                .await
                .unwrap()
        }
    };
    // The feature's blue (31, 95, 191), give or take the blending of its edges.
    let drawn_there = pixel(sx, sy).await;
    let channel = |i: usize| drawn_there[i].as_i64().unwrap();
    assert!(
        (channel(0) - 31).abs() <= 4
            && (channel(1) - 95).abs() <= 4
            && (channel(2) - 191).abs() <= 4,
        "a feature is drawn at ({sx}, {sy}): {drawn_there}"
    );
    assert_eq!(
        pixel(950.0, 470.0).await,
        serde_json::json!([241, 244, 248]),
        "no feature there"
    );
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: canvas.clone(),
            duration: None,
            x: sx - 480.0,
            y: sy - 240.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.client.perform_actions(click).await.unwrap();
    let shown = browser.text_of("#feature-properties").await;
    assert!(shown.contains("p100") && shown.contains("100.5"), "{shown}");
    browser.screenshot_page("item-map").await;

    // A bad filter is refused with its code, in the page.
    browser.fill("rows-where", "nofield").await;
    browser.click("#filter-rows").await;
    assert!(browser.text_of(".error").await.contains("invalid_request"));

    // The export downloads what the API exports.
    browser
        .goto(&format!("{}/items/{layer_id}", city.url))
        .await;
    browser
        .client
        .find(Locator::Css("#downloads a[href$='format=geojson']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let file = browser.downloaded().await;
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        city.export_text(&layer_id, "?format=geojson").await
    );

    // The owner chooses how links send it.
    assert_eq!(browser.text_of("#item-origin").await, "made here");
    browser.select("sync-as", "reference").await;
    browser.click("#save-share").await;
    assert_eq!(
        city.get(&format!("/api/v1/items/{layer_id}")).await["sync_as"],
        "reference"
    );
    browser.select("sync-as", "link").await;
    browser.click("#save-share").await;
    assert_eq!(
        city.get(&format!("/api/v1/items/{layer_id}")).await["sync_as"],
        "link"
    );

    // On Harbor, the received layer says where it came from, over which link, and that it is
    // read-only here; the API refuses an edit of it.
    let city_id = city.get("/api/v1/instance").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    browser.sign_in(&harbor.url, &harbor.admin_token).await;
    browser.goto(&format!("{}/spaces/inbox", harbor.url)).await;
    assert!(
        browser
            .text_of("#items td.from")
            .await
            .contains("received over peer City GIS")
    );
    browser.click("#items tbody tr a").await;
    assert_eq!(browser.text_of("#row-count").await, "120");
    assert!(
        browser
            .text_of("#item-links")
            .await
            .contains("Peer: City GIS")
    );
    let origin = browser.text_of("#item-origin").await;
    assert!(
        origin.contains(&city_id) && origin.contains(&layer_id) && origin.contains("peer City GIS"),
        "{origin}"
    );
    assert!(
        browser
            .text_of("#item-edits")
            .await
            .starts_with("read-only here")
    );
    assert!(
        !browser.has("#sync-as").await,
        "no share choice on a received item"
    );
    let received = harbor.get("/api/v1/items?space=inbox").await[0].clone();
    assert_eq!(received["received"]["origin_item"], layer_id.as_str());
    let (status, refusal) = harbor
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/items/{}", received["id"].as_str().unwrap()),
            Some(serde_json::json!({"title": "Mine now"})),
        )
        .await;
    assert_eq!(
        (status.as_u16(), refusal["code"].as_str()),
        (409, Some("item_received"))
    );
    browser.screenshot_page("received-item").await;
    browser.client.clone().close().await.unwrap();
}

/// The Sync page: a run started from it is followed to its end without a reload; a schedule
/// changed there; a link's history lists the run with what it moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_run_started_from_the_page_is_followed_without_a_reload() {
    let city = TestInstance::start_with(|c| {
        c.title = "City GIS".into();
        c.realtime = false;
    })
    .await;
    let harbor = TestInstance::start_with(|c| {
        c.title = "Harbor".into();
        c.realtime = false;
    })
    .await;
    open_policies(&city);
    open_policies(&harbor);
    city.create_space("roads").await;
    harbor.create_space("inbox").await;
    let (_, on_harbor) = peered(&city, &harbor, "features", &[]);
    let (status, _) = city
        .import(
            "space=roads&title=Berths",
            "application/geo+json",
            points_geojson(40),
        )
        .await;
    assert_eq!(status, 201);

    let browser = Browser::start().await;
    browser.sign_in(&harbor.url, &harbor.admin_token).await;
    browser.click("nav a[href='/sync']").await;
    let row = format!("tr[data-link='peer:{on_harbor}']");
    let flow = browser.text_of(&format!("{row} td.flow")).await;
    assert!(
        flow.contains("← receives") && flow.contains("← features") && !flow.contains("datasets"),
        "{flow}"
    );
    browser
        .client
        .execute("window.sameDocument = true;", vec![])
        .await
        .unwrap();
    // The form's answer is a new page: mark it too, then wait on it.
    browser.click(&format!("{row} button.sync-now")).await;
    browser
        .client
        .execute("window.sameDocument = true;", vec![])
        .await
        .unwrap();
    assert!(
        browser
            .text_of("#run-submitted")
            .await
            .contains("this page follows it")
    );
    wait_for("the page shows the run completed", || async {
        browser.text_of(&format!("{row} .run-status")).await == "completed"
            && browser
                .text_of("#run-submitted")
                .await
                .contains("completed")
    })
    .await;
    let same = browser
        .client
        .execute("return window.sameDocument === true;", vec![])
        .await
        .unwrap();
    assert_eq!(same, serde_json::json!(true), "no reload");
    assert!(
        browser
            .text_of(&format!("{row} .run-detail"))
            .await
            .contains("1 items and 40 rows in")
    );
    assert!(
        browser
            .text_of(&format!("{row} .lag"))
            .await
            .starts_with("ended ")
    );
    browser.screenshot("sync").await;
    let items = harbor.get("/api/v1/items?space=inbox").await;
    assert_eq!(items[0]["row_count"], 40, "{items}");

    // A schedule saved on the page.
    let form = format!("{row} form.schedule");
    browser
        .client
        .find(Locator::Css(&format!("{form} select[name='every']")))
        .await
        .unwrap()
        .select_by_value("6h")
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css(&format!("{form} select[name='paused']")))
        .await
        .unwrap()
        .select_by_value("true")
        .await
        .unwrap();
    let first = browser
        .client
        .find(Locator::Css(&format!("{form} input[name='start']")))
        .await
        .unwrap();
    // Typing into a date and time field follows the browser's locale: the test sets the value
    // the field sends, YYYY-MM-DDTHH:MM.
    browser
        .client
        .execute(
            "arguments[0].value = '2030-01-02T06:30';",
            vec![serde_json::to_value(&first).unwrap()],
        )
        .await
        .unwrap();
    browser.click(&format!("{form} button")).await;
    assert!(browser.text_of(".notice").await.contains("saved"));
    let schedules = harbor.get("/api/v1/sync/schedules").await;
    let mine = schedules
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["link"] == format!("peer:{on_harbor}"))
        .unwrap()
        .clone();
    assert_eq!(
        (mine["every_secs"].as_i64(), mine["paused"].as_bool()),
        (Some(21600), Some(true))
    );

    // The link's history: the run, its trigger and what it moved.
    browser.click(&format!("{row} a")).await;
    let run = browser
        .text_of("#runs tbody tr[data-status='completed']")
        .await;
    assert!(run.contains("on_demand") && run.contains("40"), "{run}");
    browser.screenshot("sync-history").await;
    browser.client.clone().close().await.unwrap();
}

/// Waits until the map has drawn every tile in view; returns how many features it drew.
async fn map_drawn(browser: &Browser) -> usize {
    let canvas = browser
        .client
        .find(Locator::Css("canvas#map"))
        .await
        .unwrap();
    for _ in 0..200 {
        let drawn = canvas.attr("data-drawn").await.unwrap().unwrap_or_default();
        if let Ok(count) = drawn.parse() {
            return count;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the map was not drawn: {}",
        browser.text_of("#map-status").await
    );
}

/// A layer far too large to send whole is drawn from thinned tiles of at most 2,000 features
/// each, and an admin's basemap appears under it: the browser fetches its tiles (the page's
/// content policy lets it), while the features still come from this instance alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_layer_is_thinned_on_the_map_over_a_configured_basemap() {
    use axum::extract::Path;
    use std::sync::{Arc, Mutex};
    // A tile server on loopback standing in for a basemap provider; it notes what it is asked.
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let noted = asked.clone();
    let tiles = axum::Router::new().route(
        "/tiles/{z}/{x}/{y}",
        axum::routing::get(move |Path((z, x, y)): Path<(u32, u32, String)>| {
            noted.lock().unwrap().push(format!("{z}/{x}/{y}"));
            async {
                (
                    [("content-type", "image/svg+xml")],
                    r##"<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256"><rect width="256" height="256" fill="#e8e0c8"/></svg>"##,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, tiles).await });
    let url = format!("http://127.0.0.1:{port}/tiles/{{z}}/{{x}}/{{y}}.svg");
    let basemap = ferry_node::Basemap::parse(&url).unwrap();
    let city = TestInstance::start_with(|c| c.basemap = Some(basemap)).await;
    city.create_space("dense").await;
    // 30,000 points in one square degree.
    let features: Vec<String> = (0..30_000u64)
        .map(|i| {
            let x = 5.0 + ((i * 7919) % 1000) as f64 / 1000.0 + 0.0003;
            let y = 45.0 + ((i * 104_729) % 997) as f64 / 997.0 + 0.0003;
            format!(
                r#"{{"type":"Feature","id":{i},"geometry":{{"type":"Point","coordinates":[{x},{y}]}},"properties":{{"name":"d{i}"}}}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"type":"FeatureCollection","features":[{}]}}"#,
        features.join(",")
    );
    let (status, layer) = city
        .import("space=dense&title=Sensors", "application/geo+json", body)
        .await;
    assert_eq!(status, 201, "{layer}");
    let layer_id = layer["id"].as_str().unwrap().to_string();

    let browser = Browser::start().await;
    browser.sign_in(&city.url, &city.admin_token).await;
    browser
        .goto(&format!("{}/items/{layer_id}", city.url))
        .await;
    let drawn = map_drawn(&browser).await;
    let status = browser.text_of("#map-status").await;
    assert!(status.contains("zoom in"), "{status}");
    // Every tile in view is full (2,000) or holds the edge of the square.
    assert!((2_000..30_000).contains(&drawn), "{drawn} drawn: {status}");
    // One tile as the map gets it: 2,000 features, an even sample of the square, said to be cut.
    let map_tile = |path: String| {
        let browser = &browser;
        async move {
            browser
                .client
                .execute_async(
                    "fetch(arguments[0]).then(a => a.json()).then(arguments[1]);",
                    vec![serde_json::json!(path)],
                )
                .await
                .unwrap()
        }
    };
    let tile = map_tile(format!("/items/{layer_id}/tiles/0/0/0")).await;
    let features = tile["features"].as_array().unwrap();
    assert_eq!(
        (features.len(), &tile["truncated"]),
        (2000, &serde_json::json!(true))
    );
    let west_half = features
        .iter()
        .filter(|f| f["geometry"]["coordinates"][0].as_f64().unwrap() < 5.5)
        .count();
    assert!(
        (800..1200).contains(&west_half),
        "{west_half} of 2,000 in the west half"
    );
    // A tile asked past the deepest zoom is refused with its code.
    let refused = map_tile(format!("/items/{layer_id}/tiles/23/0/0")).await;
    assert_eq!(refused["code"], "invalid_request", "{refused}");

    // The basemap's tiles were asked for and shown under the transparent canvas.
    let images = browser
        .client
        .execute(
            "return [...document.querySelectorAll('#basemap img')].map(i => i.complete && i.naturalWidth);",
            vec![],
        )
        .await
        .unwrap();
    let images = images.as_array().unwrap();
    assert!(
        !images.is_empty() && images.iter().all(|w| w == 256),
        "{images:?}"
    );
    let zoom = serde_json::from_str::<serde_json::Value>(
        &browser
            .client
            .find(Locator::Css("canvas#map"))
            .await
            .unwrap()
            .attr("data-view")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap()["zoom"]
        .as_u64()
        .unwrap();
    let seen = asked.lock().unwrap().clone();
    assert!(
        seen.iter().any(|t| t.starts_with(&format!("{zoom}/"))),
        "zoom {zoom}: {seen:?}"
    );
    let corner = browser
        .client
        .execute(
            "return document.getElementById('map').getContext('2d').getImageData(2, 2, 1, 1).data[3];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(corner, 0, "the canvas is clear where no feature is");
    browser.screenshot_page("item-map-basemap").await;

    // A layer in a projected CRS is not drawn (the map is longitude and latitude), and says so.
    let projected = r#"{"type":"FeatureCollection","features":[{"type":"Feature","id":1,"geometry":{"type":"Point","coordinates":[92000.5,437000.25]},"properties":{"name":"rd"}}]}"#;
    let (status, rd) = city
        .import(
            "space=dense&title=RD&crs=EPSG:28992",
            "application/geo+json",
            projected.to_string(),
        )
        .await;
    assert_eq!(status, 201, "{rd}");
    let rd_id = rd["id"].as_str().unwrap().to_string();
    browser.goto(&format!("{}/items/{rd_id}", city.url)).await;
    assert!(browser.text_of("#no-map").await.contains("EPSG:28992"));
    assert!(!browser.has("canvas#map").await);
    let refused = map_tile(format!("/items/{rd_id}/tiles/0/0/0")).await;
    assert_eq!(refused["code"], "invalid_request", "{refused}");
    browser
        .goto(&format!("{}/items/{layer_id}", city.url))
        .await;
    map_drawn(&browser).await;

    // Zoomed in, tiles are smaller and the map draws from deeper ones.
    for _ in 0..4 {
        browser.press("#zoom-in").await;
    }
    let deeper = map_drawn(&browser).await;
    assert!(deeper > 0, "{}", browser.text_of("#map-status").await);
    assert!(
        asked
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.starts_with(&format!("{}/", zoom + 4))),
        "the basemap follows the zoom"
    );
}
