//! The game server example (`h_game_server`) as a user meets it: its `--help` names its wire,
//! a Python MagicNet player sees its zone's units move, and a bad INPUT is refused without
//! disturbing the other players.

use magicnet::DisconnectReason;
use tokio::io::AsyncBufReadExt;

use crate::support::*;

/// Reads until a unit's move (SET_OBJECT_FIELD) arrives; returns its stamp (`sent_us`).
/// Panics when none comes within the read timeout.
async fn next_update(c: &mut RawClient) -> u64 {
    loop {
        if let Some(m) = c.read_messages(1).await.iter().rev().find(|m| m.kind == 10) {
            let (_, _, _, (_, _, sent)): (u64, u8, u8, (i32, i32, u64)) = decode(m);
            return sent;
        }
    }
}

fn unix_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_server_moves_units_for_python_players_and_refuses_bad_input() {
    // --help is the wire's reference for people who bring their own load
    let help = run_example("h_game_server", &[s("--help")], "").await;
    for needed in
        ["message 64 INPUT [seq: uint32, dx: int8, dy: int8]", "field 0 moved(x: int32, y: int32, sent_us: uint64)"]
    {
        assert!(help.contains(needed), "--help does not say `{needed}`:\n{help}");
    }

    let port = free_port();
    let args: Vec<String> = ["--port", &port.to_string(), "--zones", "2", "--objects-per-zone", "3", "--hz", "20"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let mut server = spawn_example("h_game_server", &args);
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    read_until(&mut lines, "6 units in 2 zones").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // a bystander in zone 1 (raw socket) gets its updates before and after the offender
    let (mut bystander, _) = RawClient::active(addr).await;
    bystander.send_raw(&frame(&msg(5, &(s("vz"), vec![1u32])))).await;
    next_update(&mut bystander).await;

    // a Python player in zone 2: exactly zone 2's three units, each moving, stamps rising
    let (out, ok) = run_python("game_client.py", &[port.to_string(), s("2"), s("10"), s("5")]).await;
    assert!(ok, "{out:?}");
    let created = events_named(&out, "created");
    assert_eq!(created.len(), 3, "zone 2 holds 3 units: {out:?}");
    let fin = events_named(&out, "final");
    let units = fin[0]["units"].as_array().unwrap();
    assert_eq!(units.len(), 3);
    for u in units {
        assert!(u["moves"].as_u64().unwrap() >= 10, "{u}");
        assert_ne!(u["first"], u["last"], "a unit walks: {u}");
        assert_eq!(u["stamps_rise"], true, "{u}");
    }

    // an INPUT outside -1..=1 is refused with the game's reason
    let (mut offender, _) = RawClient::active(addr).await;
    offender.send_raw(&frame(&msg(64, &(1u32, 5i8, 0i8)))).await;
    let detail = offender.expect_disconnect(DisconnectReason::application(20)).await;
    assert_eq!(detail.as_deref(), Some("INPUT moves at most 1 on each axis"));
    // and a well-formed one is taken
    let (mut player, _) = RawClient::active(addr).await;
    player.send_raw(&frame(&msg(64, &(1u32, -1i8, 1i8)))).await;
    player.send_raw(&frame(&msg(5, &(s("vz"), vec![2u32])))).await;
    next_update(&mut player).await; // a player with a good INPUT stays and plays

    // the bystander's updates go on: one stamped after the offender was dropped arrives
    let dropped_at = unix_micros();
    while next_update(&mut bystander).await <= dropped_at {}
    server.kill().await.unwrap();
}
