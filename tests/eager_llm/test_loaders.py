"""Loaders: MovieLens from the model zoo, RecBole atomic files, Amazon 2014 and 2018."""

import gzip
import json

import pytest

from eager_llm.data import (
    Review,
    dataset_stats,
    load_dataset,
    load_raw,
    load_reviews,
    preprocess,
    reviews_by_user,
)


def write(path, lines, *, gz=False):
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as file:
            file.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_movielens_100k_raw_and_preprocessed_counts():
    interactions, catalog = load_raw("movielens-100k")
    assert len(interactions) == 100_000
    assert len(catalog) == 1_682
    assert all(catalog.has_text(item) for item in catalog)
    assert catalog["1"].title == "Toy Story"
    assert catalog["1"].categories == ("Animation", "Children's", "Comedy")
    stats = dataset_stats("movielens-100k")
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1_349, 99_287)


def test_movielens_1m_raw_and_preprocessed_counts():
    raw, catalog = load_raw("movielens-1m")
    assert len(raw) == 1_000_209
    assert len(catalog) == 3_883
    assert all(catalog.has_text(item) for item in catalog)
    assert catalog["Toy Story (1995)"].title == "Toy Story"
    interactions, catalog, _ = preprocess(raw, catalog)
    assert (interactions.n_users, interactions.n_items, len(interactions)) == (
        6_040,
        3_416,
        999_611,
    )
    assert list(catalog) == interactions.item_ids.tolist()


@pytest.fixture
def atomic(tmp_path):
    """A tiny RecBole dataset ``tmp_path/data/toy.{inter,item}``."""
    folder = tmp_path / "data"
    folder.mkdir()
    write(
        folder / "toy.inter",
        ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
        + [f"u{u}\ti{i}\t5\t{10 * u + i}" for u in range(3) for i in range(4)],
    )
    write(
        folder / "toy.item",
        [
            "item_id:token\ttitle:token\tcategories:token_seq\tdescription:token",
            'i0\tFirst "quoted" item\tBooks Poetry\tA short text.',
            "i1\tSecond\t\t",
            "i2\tThird\tToys\t",
            "i3\t\tToys\tno title",
        ],
    )
    return folder


def test_recbole_directory_file_and_prefix(atomic):
    for path in (atomic, atomic / "toy.inter", atomic / "toy.item", atomic / "toy"):
        interactions, catalog = load_raw(path)
        assert len(interactions) == 12
        assert catalog["i0"].title == 'First "quoted" item'
        assert catalog["i0"].categories == ("Books", "Poetry")
        assert catalog["i0"].description == "A short text."
        assert catalog["i1"].categories == ()
    interactions, catalog = load_dataset(atomic, k_core=3)
    assert interactions.item_ids.tolist() == ["i0", "i1", "i2"]  # i3 has no title
    assert list(catalog) == ["i0", "i1", "i2"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "user_id:token\titem_id:weird\ttimestamp:float",
            r"toy\.inter: unknown column 'item_id:weird'",
        ),
        (
            "user_id:token\titem_id:token\ttime:float",
            r"toy\.inter: missing required column 'timestamp'",
        ),
    ],
)
def test_bad_atomic_header(atomic, header, message):
    write(atomic / "toy.inter", [header, "u\ti\t1"])
    with pytest.raises(ValueError, match=message):
        load_raw(atomic)


def test_bad_atomic_rows(atomic):
    header = "user_id:token\titem_id:token\ttimestamp:float"
    write(atomic / "toy.inter", [header, "u\ti\t1", "u\tj\tsoon"])
    with pytest.raises(ValueError, match=r"toy\.inter:3: column 'timestamp': not a number: 'soon'"):
        load_raw(atomic)
    write(atomic / "toy.inter", [header, "u\ti\t1\textra"])
    with pytest.raises(ValueError, match=r"toy\.inter:2: expected 3 fields, found 4"):
        load_raw(atomic)


def test_missing_title_column(atomic):
    write(atomic / "toy.item", ["item_id:token\tname:token", "i0\tx"])
    with pytest.raises(
        ValueError, match=r"toy\.item: missing required column 'title' or 'movie_title'"
    ):
        load_raw(atomic)


def review(user, item, time, **text):
    record = {"reviewerID": user, "asin": item, "unixReviewTime": time, "overall": 5.0}
    return json.dumps(record | text)


@pytest.fixture
def amazon_2014(tmp_path):
    reviews = [("A", "B1", 3), ("A", "B2", 1), ("C", "B1", 2), ("A", "B3", 5), ("A", "B4", 4)]
    write(tmp_path / "reviews_Toys_5.json.gz", [review(*r) for r in reviews], gz=True)
    meta = [
        # Python literals (single quotes), not JSON.
        "{'asin': 'B1', 'title': \"Bob's kite\", 'categories': [['Toys', 'Kites'], ['Toys']]}",
        "{'asin': 'B2', 'description': 'no title here'}",
        "{'asin': 'B3', 'title': 'Ball', 'description': 'Round.'}",
        "{'asin': 'B4', 'title': 'Yo-yo'}",
        "{'asin': 'B9', 'title': 'never reviewed'}",
    ]
    write(tmp_path / "meta_Toys.json.gz", meta, gz=True)
    return tmp_path


def test_amazon_2014(amazon_2014):
    interactions, catalog = load_raw(amazon_2014)
    assert interactions.user_ids.tolist() == ["A", "C"]
    assert interactions.item_ids.tolist() == ["B1", "B2", "B3", "B4"]
    assert interactions.timestamps.tolist() == [3, 1, 2, 5, 4]
    assert list(catalog) == ["B1", "B2", "B3", "B4"]
    assert catalog["B1"].title == "Bob's kite"
    assert catalog["B1"].categories == ("Toys", "Kites")
    assert catalog["B3"].description == "Round."
    assert not catalog.has_text("B2")
    interactions, _ = load_dataset(
        amazon_2014 / "reviews_Toys_5.json.gz", k_core=1, skip_invalid=True
    )
    assert interactions.item_ids[interactions.items].tolist() == ["B1", "B4", "B3"]
    stats = dataset_stats(amazon_2014, k_core=1, skip_invalid=True)
    assert stats["items_without_text"] == 1
    assert stats["short_users_skipped"] == 1
    assert (stats["users"], stats["items"], stats["interactions"]) == (1, 3, 3)


def test_amazon_2014_malformed_lines(amazon_2014):
    reviews = amazon_2014 / "reviews_Toys_5.json.gz"
    write(reviews, [review("A", "B1", 1), "{oops"], gz=True)
    with pytest.raises(ValueError, match=r"reviews_Toys_5\.json\.gz:2: malformed record"):
        load_raw(amazon_2014)
    write(reviews, [review("A", "B1", 1), '{"reviewerID": "A", "asin": "B2"}'], gz=True)
    with pytest.raises(
        ValueError, match=r"reviews_Toys_5\.json\.gz:2: missing key 'unixReviewTime'"
    ):
        load_raw(amazon_2014)
    write(reviews, [review("A", "B1", 1)], gz=True)
    write(amazon_2014 / "meta_Toys.json.gz", ["{'asin': 'B1', 'title': __import__('os')}"], gz=True)
    with pytest.raises(ValueError, match=r"meta_Toys\.json\.gz:1: malformed record"):
        load_raw(amazon_2014)


@pytest.fixture
def amazon_2018(tmp_path):
    write(tmp_path / "Games.csv", ["G1,U1,5.0,300", "G2,U1,4.0,100", "G1,U2,3.0,200"])
    meta = [
        {
            "asin": "G1",
            "title": "Space Game",
            "category": ["Games", "PC"],
            "description": ["Fun.", "Fast."],
        },
        {"asin": "G2", "title": "", "category": []},
    ]
    write(tmp_path / "meta_Games.json.gz", [json.dumps(m) for m in meta], gz=True)
    return tmp_path


def test_amazon_2018(amazon_2018):
    interactions, catalog = load_raw(amazon_2018)
    assert interactions.user_ids.tolist() == ["U1", "U2"]
    assert interactions.item_ids.tolist() == ["G1", "G2"]
    assert interactions.timestamps.tolist() == [300, 100, 200]
    assert catalog["G1"].categories == ("Games", "PC")
    assert catalog["G1"].description == "Fun. Fast."
    assert not catalog.has_text("G2")


def test_amazon_2018_bad_input(amazon_2018):
    write(amazon_2018 / "meta_Games.json.gz", ['{"asin": "G1"}', '{"asin": "G2",'], gz=True)
    with pytest.raises(ValueError, match=r"meta_Games\.json\.gz:2: malformed record"):
        load_raw(amazon_2018)
    write(amazon_2018 / "Games.csv", ["G1,U1,5.0"])
    with pytest.raises(ValueError, match=r"Games\.csv:1: expected 4 fields, found 3"):
        load_raw(amazon_2018)


def test_amazon_2014_reviews(amazon_2014):
    pairs = [("A", "B1"), ("A", "B2"), ("C", "B1"), ("A", "B3"), ("A", "B4")]
    assert load_reviews(amazon_2014) == dict.fromkeys(pairs, Review("", ""))  # no text fields
    lines = [
        review("A", "B1", 3, summary="Flies well", reviewText="My son loves it."),
        review("A", "B1", 1, summary="Too early", reviewText="The first one."),
        review("C", "B1", 2, reviewText=["two", "parts"]),
        review("C", "B3", 4, summary="Round"),
    ]
    write(amazon_2014 / "reviews_Toys_5.json.gz", lines, gz=True)
    reviews = load_reviews(amazon_2014 / "reviews_Toys_5.json.gz")
    assert reviews == {  # of a repeated pair, the earliest review
        ("A", "B1"): Review("Too early", "The first one."),
        ("C", "B1"): Review("", "two parts"),
        ("C", "B3"): Review("Round", ""),
    }
    interactions, _ = load_raw(amazon_2014)
    assert reviews_by_user(interactions, reviews) == [
        {0: Review("Too early", "The first one.")},
        {0: Review("", "two parts"), 1: Review("Round", "")},
    ]
    write(amazon_2014 / "reviews_Toys_5.json.gz", [review("A", "B1", "soon")], gz=True)
    with pytest.raises(ValueError, match=r"_5\.json\.gz:1: 'unixReviewTime': not a number"):
        load_reviews(amazon_2014)


def test_amazon_2018_review_file(amazon_2018):
    assert load_reviews(amazon_2018) is None  # the ratings CSV has no text
    assert load_reviews("movielens-100k") is None
    (amazon_2018 / "Games.csv").unlink()
    lines = [review("U1", "G1", 300, summary="Great"), review("U1", "G2", 100)]
    write(amazon_2018 / "Games_5.json.gz", lines, gz=True)
    interactions, catalog = load_raw(amazon_2018)
    assert interactions.item_ids.tolist() == ["G1", "G2"]
    assert interactions.timestamps.tolist() == [300, 100]
    assert catalog["G1"].description == "Fun. Fast."
    assert load_reviews(amazon_2018)[("U1", "G1")] == Review("Great", "")


def test_unresolvable_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a dataset name"):
        load_raw(tmp_path / "missing")
    write(tmp_path / "a.inter", [])
    write(tmp_path / "b.csv", [])
    with pytest.raises(ValueError, match="expected one interaction file .* found a.inter, b.csv"):
        load_raw(tmp_path)
