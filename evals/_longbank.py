"""Hand-written material for `make_long_dataset.py`: long, casual two-person chats.

Everything here was written for this project. `{P}` is the person a fact belongs to, `{Q}` the
friend they talk to, `{when}` a relative time phrase ("yesterday", "last weekend") resolved to a
date by the generator, `{photo}` a shared photo's one-line caption. Questions are written the way
a person who read the chat would ask them: they name the person, and they reuse a word of the
evidence about as often as people do, not every time (`ask` variants paraphrase on purpose).
"""

from __future__ import annotations

from ._bank import BOOKS, CITIES, MONTHS, NAMES, PEOPLE, RESTAURANTS  # noqa: F401  (shared lists)

# --- relative time phrases -----------------------------------------------------------------------
# (phrase, kind, n): kind "day" = n days from the session date; "weekday" = the last such weekday
# strictly before it (n: Monday=0); "weekend" / "week" / "month" = the one before the session.
WHENS_PAST = [
    ("yesterday", "day", -1),
    ("yesterday", "day", -1),
    ("last night", "day", -1),
    ("this morning", "day", 0),
    ("earlier today", "day", 0),
    ("two days ago", "day", -2),
    ("three days ago", "day", -3),
    ("on Saturday", "weekday", 5),
    ("last Sunday", "weekday", 6),
    ("last Friday", "weekday", 4),
    ("last weekend", "weekend", 0),
    ("last week", "week", 0),
    ("a couple of weeks ago", "day", -14),
    ("last month", "month", 0),
]

# --- the chat's glue ------------------------------------------------------------------------------

OPENERS = [
    (
        "Hey {Y}! Long time no talk. How have you been?",
        "{X}! So good to hear from you. Pretty hectic, but good. You?",
    ),
    (
        "Hi {Y}, how's everything going on your end?",
        "Hey! Honestly a bit of a whirlwind lately, but I'm hanging in there.",
    ),
    (
        "Morning {Y}! Got a few minutes to chat?",
        "Always for you, {X}. Just sat down with a cup of tea.",
    ),
    ("{Y}!! I have so much to tell you.", "Ooh, I'm all ears. Tell me everything!"),
    (
        "Hey you. Surviving the week?",
        "Just about, haha. It's been one of those weeks. What's new with you?",
    ),
    (
        "Hi {Y}! It's been a while, I've missed our chats.",
        "Me too, {X}! Life keeps getting in the way.",
    ),
    (
        "Evening {Y}, finally some quiet time to catch up.",
        "Perfect timing, the house is quiet for once here too.",
    ),
    (
        "Hello {Y}! How did the rest of your week turn out?",
        "Better than it started, thankfully. How about yours?",
    ),
    (
        "Hey {Y}, hope you're doing well!",
        "Hey {X}! Doing great, thanks for asking. What have you been up to?",
    ),
    ("{Y}, are you free to talk for a bit?", "Yes! Perfect excuse to avoid my inbox."),
    (
        "Hi {Y}! How are things with you and the family?",
        "All good here, everyone's busy as usual. How about you, {X}?",
    ),
    (
        "Hey hey! Any exciting news since we last talked?",
        "A few bits actually! But you go first, {X}.",
    ),
    (
        "Hiya {Y}, finally a free evening! What's the latest?",
        "Not much drama, thankfully. Glad you messaged, {X}.",
    ),
    (
        "Good afternoon {Y}! Hope the week is being kind to you.",
        "Mostly! A few bumps but nothing I can't handle.",
    ),
    ("{Y}, you won't believe the week I've had.", "Uh oh, good or bad? I'm listening."),
    (
        "Hey stranger! Where have you been hiding?",
        "Ha, buried under work and laundry, {X}. How are you?",
    ),
    ("Hi {Y}, I was just thinking about you!", "Aw, that's sweet. I was about to message you too."),
    ("Happy weekend, {Y}! Any plans?", "Happy weekend! A few, but first tell me how you are."),
    ("Hello from my sofa, {Y}! How's life?", "Ha, hello from my kitchen. Life's good, {X}!"),
    (
        "Hey {Y}, quick break from chores. How are things?",
        "Things are good! Chores can wait a bit.",
    ),
]

CLOSERS = [
    (
        "Anyway, I should get going. It was lovely catching up!",
        "Always, {X}. Talk soon and take care!",
    ),
    ("Okay, I need to start on dinner. Chat later?", "Of course! Enjoy your evening, {X}."),
    ("I have to run, but let's talk again soon.", "Definitely. Bye for now!"),
    ("Right, back to the grind for me. Bye!", "Good luck with everything, {X}. Speak soon!"),
    ("Time for bed, I'm shattered. Night!", "Night, {X}! Sleep well."),
    ("Let's not wait so long next time, okay?", "Deal! Message me anytime."),
    ("Gotta go, but thanks for listening as always.", "Anytime, {X}. That's what friends are for."),
    ("I'll let you go. Give everyone a hug from me!", "Will do! Take care of yourself, {X}."),
    ("Oops, look at the time. Talk to you later!", "Haha, time flies. Bye {X}!"),
    ("The kettle's boiled, so I'm off. Lovely chatting!", "You too! Enjoy your tea, {X}."),
    ("I should really get some sleep. Chat soon?", "Yes! Sweet dreams, {X}."),
    ("Off to pick up the kids now, bye!", "Bye {X}, drive safe!"),
    ("That's all my news for now. Speak soon!", "Thanks for sharing, {X}. Speak soon!"),
    ("Let me know how everything goes, okay? Bye!", "I will! Bye {X}."),
]

# Exchanges of 2-4 turns that carry nothing any question asks about. They borrow the vocabulary of
# the facts on purpose (runs, classes, trips, photos), as real chat does.
SMALL_TALK = [
    (
        "The weather has been all over the place lately, sunshine one minute and rain the next.",
        "Tell me about it. I got caught in a downpour on the way home and looked like a drowned "
        "cat.",
        "Haha, I've started carrying an umbrella everywhere just in case.",
    ),
    (
        "Have you been watching anything good recently?",
        "I've been bingeing a baking show, it's weirdly relaxing.",
        "Oh I love those. Everyone is so nice to each other!",
    ),
    (
        "I'm so tired this week, I could sleep for a whole day.",
        "Same here. I think the change of season is getting to me.",
        "We both need a proper lie-in.",
    ),
    (
        "Work has been non-stop, I barely had time to eat lunch.",
        "That sounds exhausting. Make sure you take breaks!",
        "I know, I know. Easier said than done.",
    ),
    (
        "I tried a new recipe last night and it was a complete disaster.",
        "Oh no, what happened?",
        "Let's just say the smoke alarm was involved. We ordered pizza in the end.",
    ),
    (
        "Do you have any plans for the weekend?",
        "Nothing big, maybe a long walk and a film.",
        "That sounds perfect honestly. I need a slow weekend too.",
    ),
    (
        "My phone screen cracked again, I'm so clumsy.",
        "Again? You need one of those chunky cases.",
        "I know, I'm ordering one tonight.",
    ),
    (
        "I've been trying to drink more water and less coffee.",
        "How's that going?",
        "Terribly. I'm on my third coffee right now.",
    ),
    (
        "The traffic this morning was unbelievable.",
        "Roadworks again?",
        "Yep, they've dug up the whole high street.",
    ),
    (
        "I finally cleared out the spare room.",
        "Oh, that must feel so good!",
        "It does! Four bags went to the charity shop.",
    ),
    (
        "I keep meaning to go to bed earlier but then I start scrolling.",
        "Guilty. The phone is the enemy.",
        "Maybe we should make a pact to put them away at ten.",
    ),
    (
        "There's a new cafe near my place, the cinnamon buns are amazing.",
        "You have to take me there next time I visit.",
        "Deal, my treat.",
    ),
    (
        "My neighbours have started drumming lessons.",
        "Oh no. Every day?",
        "Every single evening. I'm learning the songs too at this point.",
    ),
    (
        "I've been listening to a podcast about the history of food, it's fascinating.",
        "That sounds right up your street. Send me the name?",
        "Sure, I'll send it after this.",
    ),
    (
        "I can't believe how fast this year is going.",
        "I know, it feels like it was New Year's last week.",
        "Time flies when you're busy, I suppose.",
    ),
    (
        "I had the weirdest dream last night.",
        "Oh, go on, tell me!",
        "I was back at school but all the teachers were penguins. Don't ask.",
    ),
    (
        "Everyone at work seems to have a cold at the moment.",
        "Stay away from them! Lots of tea and vitamins.",
        "I'm practically living on lemon and honey already.",
    ),
    (
        "I've started doing a crossword every morning.",
        "Ooh, how are you getting on?",
        "I can usually do about half of it before I give up.",
    ),
    (
        "Our internet went down for a whole day.",
        "Nightmare! What did you do?",
        "Read, cleaned the kitchen, and then stared at the router a lot.",
    ),
    (
        "I walked past the park today and the trees are turning such lovely colours.",
        "That's my favourite time of year for walks.",
        "Mine too. Everything looks like a painting.",
    ),
    (
        "I've been trying to cut down on takeaways.",
        "Good for you! Any tips?",
        "Batch cooking on Sundays. It's boring, but it works.",
    ),
    (
        "I got completely lost driving to a friend's place yesterday evening.",
        "Didn't you have the map on?",
        "I did, it just kept telling me to turn into fields.",
    ),
    (
        "My plants are finally looking healthy again.",
        "What changed?",
        "I stopped watering them every day, apparently that was the problem.",
    ),
    (
        "Do you ever feel like you need a holiday from your holiday?",
        "All the time! Coming back is always hectic.",
        "The laundry alone takes a week.",
    ),
    (
        "The supermarket had run out of bread again today.",
        "That's the third time this month, isn't it?",
        "I think I'm going to have to start baking my own.",
    ),
    (
        "I've been feeling a bit stuck lately, you know?",
        "I get that. Sometimes a small change helps.",
        "Yeah, I'm thinking about what that could be.",
        "Whatever it is, I'm here to cheer you on.",
    ),
    (
        "Did you see the news about the storm up north?",
        "I did, it looked scary. Hope everyone's okay.",
        "My cousin said it was mostly fallen trees, luckily.",
    ),
    (
        "I signed up for one of those step challenges at work.",
        "Ha, are you winning?",
        "I'm somewhere in the middle. Not bad for someone who sits all day.",
    ),
    (
        "I've been learning a few phrases of Italian on an app.",
        "Ciao! How's it going?",
        "Slowly. The app keeps guilt-tripping me with its little owl.",
    ),
    (
        "My sister sent me the funniest video of her cat falling off the sofa.",
        "Haha, cats are the best entertainment.",
        "Honestly better than anything on TV.",
    ),
    (
        "I'm trying to be better at replying to messages.",
        "Don't worry, you're doing fine with me!",
        "Haha, thanks. You're my favourite person to reply to.",
    ),
    (
        "It's been so windy here, the bins keep falling over.",
        "Ugh, the worst. We had rubbish all over the street.",
        "Lovely. Nothing like chasing crisp packets at seven in the morning.",
    ),
    (
        "I took way too many photos on my walk this morning.",
        "Of what?",
        "Clouds, mostly. [shares a photo of a wide grey sky over a row of rooftops]",
        "Very moody, I like it!",
    ),
    (
        "I found my old school diary in a box.",
        "Oh, that must have been hilarious to read.",
        "So embarrassing. I was very dramatic at fifteen.",
    ),
    (
        "Is it just me or is everything more expensive lately?",
        "It's not just you, my shopping bill is ridiculous.",
        "I've started comparing prices like a detective.",
    ),
    ("I finally fixed the wobbly table.", "Look at you, so handy!", "It only took me two years."),
]

# Generic turns that fill an episode: the friend's reaction and the owner's answer.
REACTIONS = {
    "happy": [
        "That's amazing, {P}! I'm so happy for you.",
        "Wow, that's fantastic news!",
        "Oh, I love that! Good for you.",
        "That's so exciting, {P}! You must be thrilled.",
        "Yay! That's wonderful to hear.",
        "That's brilliant, you deserve it.",
        "How cool is that! Tell me more.",
    ],
    "neutral": [
        "Oh really? How was it?",
        "Interesting! How did that come about?",
        "Ooh, and how did you find it?",
        "Nice, that sounds like quite an experience.",
        "Huh, I didn't know that! What was it like?",
        "That sounds lovely. Was it what you expected?",
        "Oh nice, how are you feeling about it?",
    ],
    "sad": [
        "Oh no, I'm so sorry, {P}. That sounds really hard.",
        "That's rough. Are you doing okay?",
        "Oh, {P}, that must have been tough.",
        "I'm sorry to hear that. Is there anything I can do?",
    ],
}

FOLLOW_UPS = {
    "happy": [
        "Thanks! I'm still buzzing about it honestly.",
        "Thank you! It's been a long time coming.",
        "I know, I keep smiling about it.",
        "Thanks so much, it means a lot that you're excited too.",
        "It really made my week.",
    ],
    "neutral": [
        "It was good! A bit different from what I imagined, but good.",
        "Honestly, better than I expected.",
        "Pretty great, I'd definitely do it again.",
        "It was fun, if a little chaotic.",
        "I enjoyed it more than I thought I would.",
    ],
    "sad": [
        "Thanks, I'm okay. Just needed to say it out loud.",
        "I'm getting there, one day at a time.",
        "Thanks for asking. Talking about it helps.",
    ],
}

INTERJECTIONS = [
    "Honestly, ",
    "Haha, ",
    "Oh, ",
    "So, ",
    "Ugh, ",
    "Anyway, ",
    "You know what? ",
    "Okay so ",
    "Ha! ",
]
"""Openings a small-talk turn may take, so a reused exchange is not repeated word for word."""

CALLBACK_ASKS = [
    "How's the {topic} going these days?",
    "Any updates on the {topic}?",
    "Still doing the {topic} thing?",
    "Oh, I meant to ask, how is the {topic}?",
]
CALLBACK_REPLIES = [
    "Oh, still going! Nothing much new to report really.",
    "Same as ever, honestly. Ticking along.",
    "It's going okay. A bit slow lately, but I haven't given up.",
    "Good, thanks for asking! I'll tell you more next time.",
]

# --- events: something a person did, dated by a relative phrase ----------------------------------
# say: the owner's turn ({when} always inside); photo: captions, used by some turns; extra: the
# friend's question and the owner's answer (a second evidence turn for nothing: distractor detail);
# ask: single-hop questions (question, answer); when_ask: "when" questions; on_ask: questions
# anchored on the resolved date ({date}); topic: a word for later small callbacks.

EVENTS = [
    dict(
        key="pottery",
        topic="pottery",
        tone="happy",
        slots={
            "thing": [
                "a blue mug",
                "a wonky fruit bowl",
                "a little plant pot",
                "a set of two plates",
            ]
        },
        say=[
            "I went to my first pottery workshop {when} and made {thing}! It's not perfect but I'm "
            "proud of it.",
            "Guess who got her hands covered in clay {when}? I did a pottery class and came home "
            "with {thing}.",
        ],
        photo=["a handmade clay {thing} drying on a wooden shelf"],
        ask=[
            ("What did {P} make at the pottery class?", "{thing}"),
            ("What did {P} bring home from the clay workshop?", "{thing}"),
        ],
        when_ask=[
            "When did {P} go to the pottery workshop?",
            "When did {P} try pottery for the first time?",
        ],
        on_ask=["What class did {P} try on {date}?"],
    ),
    dict(
        key="camping",
        topic="camping",
        tone="happy",
        slots={
            "place": [
                "Lake Tarn",
                "the Pine Ridge campsite",
                "Blackwater Forest",
                "the coast near Saltmoor",
            ],
            "detail": [
                "roasting marshmallows",
                "spotting an owl",
                "swimming in the cold lake",
                "the stars",
            ],
        },
        say=[
            "We took the kids camping at {place} {when}. Their favourite part was {detail}.",
            "{when} we packed up the car and went camping at {place}, and honestly {detail} made "
            "the whole trip.",
        ],
        photo=[
            "a green tent pitched beside a lake at sunset",
            "two children sitting by a campfire wrapped in blankets",
        ],
        ask=[
            ("Where did {P} go camping with the kids?", "{place}"),
            ("What was the highlight of {P}'s family camping trip?", "{detail}"),
        ],
        when_ask=[
            "When did {P} go camping with the family?",
            "When was {P}'s camping trip at {place}?",
        ],
        on_ask=["Where was {P} on {date}?"],
    ),
    dict(
        key="charity_run",
        topic="running",
        tone="happy",
        slots={
            "distance": ["5k", "10k", "half marathon"],
            "cause": [
                "a children's hospital",
                "the local food bank",
                "a mental health charity",
                "cancer research",
            ],
        },
        say=[
            "I ran a {distance} {when} to raise money for {cause}! My legs are still complaining.",
            "So {when} I did the {distance} charity run, all the money goes to {cause}.",
        ],
        photo=["a finisher's medal hanging from a kitchen cupboard handle"],
        ask=[
            ("Which charity did {P} raise money for by running?", "{cause}"),
            ("How far was the race {P} ran for charity?", "{distance}"),
        ],
        when_ask=["When did {P} run the charity race?", "When did {P} do the {distance}?"],
        on_ask=["What did {P} do for charity on {date}?"],
    ),
    dict(
        key="concert",
        topic="music",
        tone="happy",
        slots={
            "band": ["The Hollow Pines", "Marigold Static", "Nova Harbour", "The Velvet Foxes"],
            "venue": [
                "the Apollo",
                "a tiny club downtown",
                "the open-air stage in the park",
                "the old corn exchange",
            ],
        },
        say=[
            "{when} I finally saw {band} live at {venue}. I screamed so much I lost my voice!",
            "I went to see {band} {when}, at {venue}. Best gig of my life, no exaggeration.",
        ],
        photo=["a crowded stage lit up in purple lights"],
        ask=[
            ("Which band did {P} see live?", "{band}"),
            ("Where was the gig {P} went to?", "{venue}"),
        ],
        when_ask=[
            "When did {P} go to the {band} concert?",
            "When did {P} see her favourite band play?",
        ],
        on_ask=["What did {P} go and see on {date}?"],
    ),
    dict(
        key="museum",
        topic="museum trips",
        tone="neutral",
        slots={
            "exhibit": [
                "dinosaur fossils",
                "ancient Egyptian jewellery",
                "space exploration",
                "Victorian toys",
            ]
        },
        say=[
            "{when} I took my nephew to the museum, there was a whole exhibition on {exhibit}.",
            "We spent {when} at the museum. The {exhibit} section was the best bit.",
        ],
        photo=["a child staring up at a huge skeleton in a museum hall"],
        ask=[
            ("What exhibition did {P} see at the museum?", "{exhibit}"),
            ("What was on show at the museum {P} visited?", "{exhibit}"),
        ],
        when_ask=[
            "When did {P} visit the museum?",
            "When did {P} take her nephew out to see an exhibition?",
        ],
        on_ask=["Where did {P} take her nephew on {date}?"],
    ),
    dict(
        key="shelter",
        topic="volunteering",
        tone="happy",
        slots={
            "animal": ["an old greyhound", "three kittens", "a shy rabbit", "a huge fluffy dog"]
        },
        say=[
            "I volunteered at the animal shelter {when}. I spent most of the shift with {animal}, "
            "it broke my heart a bit.",
            "{when} was my shift at the rescue centre, I looked after {animal} the whole "
            "afternoon.",
        ],
        photo=["a dog with a grey muzzle resting its head on someone's knee"],
        ask=[
            ("Which animal did {P} look after at the shelter?", "{animal}"),
            ("Who did {P} spend her volunteering shift with?", "{animal}"),
        ],
        when_ask=[
            "When did {P} volunteer at the animal shelter?",
            "When was {P}'s shift at the rescue centre?",
        ],
        on_ask=["Where did {P} volunteer on {date}?"],
    ),
    dict(
        key="interview",
        topic="job hunt",
        tone="neutral",
        slots={
            "company": [
                "Northwind Logistics",
                "Kestrel Games",
                "Bluebell Publishing",
                "Lumen Robotics",
                "Fernhill Studio",
            ],
            "question": [
                "my biggest weakness",
                "where I see myself in five years",
                "a time I failed",
                "why I left my last job",
            ],
        },
        say=[
            "I had an interview at {company} {when}. They asked me about {question} and my mind "
            "went blank for a second!",
            "So, the interview at {company} was {when}. The worst bit was when they asked about "
            "{question}.",
        ],
        ask=[
            ("Which company interviewed {P}?", "{company}"),
            ("What interview question threw {P} off?", "{question}"),
        ],
        when_ask=[
            "When was {P}'s job interview at {company}?",
            "When did {P} interview at {company}?",
        ],
        on_ask=["What did {P} have on {date}?"],
    ),
    dict(
        key="wedding",
        topic="wedding season",
        tone="happy",
        slots={
            "who": [
                "my cousin Leila",
                "my old flatmate Bruno",
                "my colleague Marta",
                "my best friend from school, Dalia",
            ],
            "moment": [
                "the first dance to an old jazz song",
                "the groom crying during the vows",
                "a surprise flash mob",
                "the dog bringing the rings",
            ],
        },
        say=[
            "{when} I went to the wedding of {who}. The best moment was {moment}.",
            "The wedding of {who} was {when} and I'm still smiling. There was {moment}!",
        ],
        photo=["a bride and groom under an arch of white flowers"],
        ask=[
            ("Whose wedding did {P} go to?", "{who}"),
            ("What was the most memorable part of the wedding {P} attended?", "{moment}"),
        ],
        when_ask=["When did {P} go to the wedding?", "When was the wedding {P} attended?"],
        on_ask=["What celebration did {P} attend on {date}?"],
    ),
    dict(
        key="hike",
        topic="hiking",
        tone="happy",
        slots={
            "mountain": ["Ben Arden", "Mount Keller", "the Hollin Fells", "Skerry Peak"],
            "hours": ["four", "six", "seven"],
        },
        say=[
            "I hiked up {mountain} {when}! It took {hours} hours and the view at the top was "
            "unreal.",
            "{when} I climbed {mountain}, {hours} hours there and back, my knees hate me.",
        ],
        photo=["a view over misty green valleys from a rocky summit"],
        ask=[
            ("Which mountain did {P} climb?", "{mountain}"),
            ("How long did {P}'s climb take?", "{hours} hours"),
        ],
        when_ask=["When did {P} hike up {mountain}?", "When did {P} go on the big mountain walk?"],
        on_ask=["What did {P} climb on {date}?"],
    ),
    dict(
        key="cooking_class",
        topic="cooking",
        tone="happy",
        slots={
            "cuisine": ["Thai", "Georgian", "Ethiopian", "Sicilian"],
            "dish": ["dumplings", "a spicy curry", "flatbreads", "handmade pasta"],
        },
        say=[
            "I did a {cuisine} cooking class {when}, we made {dish} from scratch!",
            "{when} I went to a {cuisine} cookery course and learned to make {dish}.",
        ],
        photo=["a tray of freshly made {dish} on a floury counter"],
        ask=[
            ("What cuisine was {P}'s cooking class?", "{cuisine}"),
            ("What did {P} learn to cook in the class?", "{dish}"),
        ],
        when_ask=["When did {P} take the cooking class?", "When did {P} learn to make {dish}?"],
        on_ask=["What did {P} learn on {date}?"],
    ),
    dict(
        key="beach",
        topic="beach days",
        tone="happy",
        slots={
            "beach": ["Sandy Cove", "Gull Bay", "Westmouth beach", "Pebble Point"],
            "found": ["a perfect starfish", "a message in a bottle", "a seal on the rocks"],
        },
        say=[
            "We spent the day at {beach} {when}, and the kids found {found}!",
            "{when} we drove out to {beach}. The highlight was {found}.",
        ],
        photo=["footprints in the sand leading towards the sea"],
        ask=[
            ("Which beach did {P}'s family visit?", "{beach}"),
            ("What did {P}'s kids find at the beach?", "{found}"),
        ],
        when_ask=["When did {P} go to {beach}?", "When did {P} take the kids to the seaside?"],
        on_ask=["Where did {P} spend {date}?"],
    ),
    dict(
        key="doctor",
        topic="health stuff",
        tone="sad",
        slots={"issue": ["a sprained wrist", "a nasty ear infection", "my back", "a bad migraine"]},
        say=[
            "I had to go to the doctor {when} about {issue}. Not the most fun afternoon.",
            "{when} I finally saw a doctor about {issue}, they told me to rest for a week.",
        ],
        ask=[
            ("Why did {P} go to the doctor?", "{issue}"),
            ("What health problem did {P} see the GP about?", "{issue}"),
        ],
        when_ask=["When did {P} go to the doctor?", "When did {P} get {issue} checked?"],
        on_ask=["Why did {P} see a doctor on {date}?"],
    ),
    dict(
        key="art_show",
        topic="painting",
        tone="happy",
        slots={
            "painting": [
                "a sunrise over the harbour",
                "my grandmother's garden",
                "a stormy sea",
                "a field of sunflowers",
            ]
        },
        say=[
            "I showed my painting of {painting} at the community art show {when}. Someone asked to "
            "buy it!",
            "{when} my painting of {painting} was hung in a local exhibition. I was so nervous.",
        ],
        photo=["an oil painting of {painting} hanging on a white wall"],
        ask=[
            ("What was the painting {P} exhibited?", "{painting}"),
            ("What did {P}'s painting at the art show show?", "{painting}"),
        ],
        when_ask=["When did {P} exhibit her painting?", "When was {P}'s painting in the art show?"],
        on_ask=["What happened with {P}'s art on {date}?"],
    ),
    dict(
        key="road_trip",
        topic="travelling",
        tone="happy",
        slots={
            "route": [
                "along the coast road to Porthallow",
                "through the lake district",
                "up to the highlands",
                "across the border to Valley Forge",
            ],
            "stop": [
                "a tiny cheese farm",
                "a lighthouse cafe",
                "an abandoned castle",
                "a vintage car museum",
            ],
        },
        say=[
            "We did a road trip {route} {when}. Best stop was {stop}.",
            "{when} we drove {route}, and we stumbled across {stop}!",
        ],
        photo=["a car parked on a winding road with hills behind it"],
        ask=[
            ("Where did {P}'s road trip go?", "{route}"),
            ("What was {P}'s favourite stop on the road trip?", "{stop}"),
        ],
        when_ask=["When did {P} go on the road trip?", "When did {P} drive {route}?"],
        on_ask=["Where was {P} driving on {date}?"],
    ),
    dict(
        key="birthday",
        topic="birthday plans",
        tone="happy",
        slots={
            "who": ["my daughter", "my son", "my mum", "my partner"],
            "age": ["seven", "ten", "sixty", "forty"],
            "party": [
                "a pirate-themed party",
                "a picnic in the park",
                "a surprise dinner",
                "a karaoke night",
            ],
        },
        say=[
            "{who} turned {age} {when}! We threw {party}.",
            "We celebrated {who}'s {age}th birthday {when} with {party}.",
        ],
        photo=["a birthday cake with candles on a crowded table"],
        ask=[
            ("How old did {P}'s family member turn?", "{age}"),
            ("What kind of party did {P} throw for the birthday?", "{party}"),
        ],
        when_ask=["When did {P} celebrate the birthday?", "When was the birthday party {P} threw?"],
        on_ask=["What was {P} celebrating on {date}?"],
    ),
    dict(
        key="dance",
        topic="dance classes",
        tone="happy",
        slots={
            "dance": ["salsa", "tap", "swing", "flamenco"],
            "song": ["an old Motown hit", "a tango remix", "a big band classic"],
        },
        say=[
            "I did my first {dance} performance {when}! We danced to {song} and I didn't fall over "
            "once.",
            "{when} our {dance} group performed on stage, to {song}. Terrifying and amazing.",
        ],
        photo=["dancers in matching red outfits on a small stage"],
        ask=[
            ("What style of dance did {P} perform?", "{dance}"),
            ("What music did {P}'s group dance to?", "{song}"),
        ],
        when_ask=["When did {P} perform with the dance group?", "When was {P}'s {dance} show?"],
        on_ask=["What did {P} perform on {date}?"],
    ),
    dict(
        key="fishing",
        topic="fishing",
        tone="neutral",
        slots={
            "fish": ["a huge trout", "two mackerel", "absolutely nothing", "a pike"],
            "with": ["my dad", "my uncle", "my neighbour"],
        },
        say=[
            "I went fishing with {with} {when} and caught {fish}.",
            "{when} {with} took me out on the river, I caught {fish}!",
        ],
        photo=["a small boat on a calm river at dawn"],
        ask=[
            ("Who did {P} go fishing with?", "{with}"),
            ("What did {P} catch on the fishing trip?", "{fish}"),
        ],
        when_ask=["When did {P} go fishing?", "When was {P}'s trip on the river?"],
        on_ask=["What was {P} doing on {date}?"],
    ),
    dict(
        key="bake_sale",
        topic="baking",
        tone="happy",
        slots={
            "bake": ["lemon drizzle cake", "cinnamon rolls", "chocolate brownies", "carrot cake"],
            "raised": ["120", "300", "85"],
        },
        say=[
            "The school bake sale was {when}. My {bake} sold out in twenty minutes and we raised "
            "{raised} pounds!",
            "{when} I baked {bake} for the fundraiser, we made {raised} pounds in total.",
        ],
        photo=["a table covered in cakes with handwritten price labels"],
        ask=[
            ("What did {P} bake for the fundraiser?", "{bake}"),
            ("How much did the bake sale raise?", "{raised} pounds"),
        ],
        when_ask=[
            "When was the bake sale {P} baked for?",
            "When did {P} sell cakes at the school fundraiser?",
        ],
        on_ask=["What fundraiser did {P} help with on {date}?"],
    ),
    dict(
        key="garden",
        topic="the garden",
        tone="happy",
        slots={"plant": ["tomatoes", "strawberries", "sunflowers", "a lemon tree"]},
        say=[
            "I planted {plant} in the garden {when}, fingers crossed they survive me.",
            "{when} I spent all afternoon in the garden putting in {plant}.",
        ],
        photo=["small green seedlings in terracotta pots on a windowsill"],
        ask=[
            ("What did {P} plant in the garden?", "{plant}"),
            ("What is {P} trying to grow at home?", "{plant}"),
        ],
        when_ask=["When did {P} plant {plant}?", "When did {P} do the planting in her garden?"],
        on_ask=["What did {P} plant on {date}?"],
    ),
    dict(
        key="lost_item",
        topic="the great search",
        tone="sad",
        slots={
            "item": ["my wedding ring", "my grandad's watch", "my car keys", "my passport"],
            "where": [
                "in the freezer",
                "under the car seat",
                "in a coat pocket",
                "in the dog's bed",
            ],
        },
        say=[
            "I lost {item} {when} and panicked for hours. Found it {where} of all places!",
            "{when} I couldn't find {item} anywhere. Turned out it was {where}.",
        ],
        ask=[
            ("What did {P} lose?", "{item}"),
            ("Where did {P} eventually find the lost item?", "{where}"),
        ],
        when_ask=[
            "When did {P} lose {item}?",
            "When did {P} have the panic over the missing item?",
        ],
        on_ask=["What did {P} misplace on {date}?"],
    ),
    dict(
        key="volunteer_tutor",
        topic="tutoring",
        tone="happy",
        slots={
            "subject": ["reading", "maths", "English", "science"],
            "kid": ["a boy called Sami", "a girl named Rosie", "two brothers"],
        },
        say=[
            "I started volunteering as a {subject} tutor {when}, I'm helping {kid}.",
            "{when} was my first session tutoring {kid} in {subject}, they're so bright.",
        ],
        ask=[("What subject does {P} tutor?", "{subject}"), ("Who is {P} tutoring?", "{kid}")],
        when_ask=["When did {P} start tutoring?", "When did {P} begin volunteering with kids?"],
        on_ask=["What did {P} start on {date}?"],
    ),
    dict(
        key="theatre",
        topic="the theatre",
        tone="neutral",
        slots={
            "play": [
                "a new production of Macbeth",
                "a musical about a lighthouse keeper",
                "an improv comedy show",
                "a ballet of Swan Lake",
            ]
        },
        say=[
            "I went to the theatre {when} to see {play}. The costumes were incredible.",
            "{when} we got last-minute tickets for {play}.",
        ],
        photo=["red velvet theatre seats facing a lit stage"],
        ask=[
            ("What show did {P} see at the theatre?", "{play}"),
            ("What did {P} watch on stage?", "{play}"),
        ],
        when_ask=["When did {P} go to the theatre?", "When did {P} see {play}?"],
        on_ask=["What did {P} see on {date}?"],
    ),
    dict(
        key="car_trouble",
        topic="the car",
        tone="sad",
        slots={
            "problem": [
                "a flat tyre on the motorway",
                "the battery dying in a car park",
                "a cracked windscreen",
                "the engine overheating",
            ]
        },
        say=[
            "Ugh, {when} I had {problem}. I had to wait two hours for help.",
            "My car let me down {when}, {problem}.",
        ],
        ask=[
            ("What went wrong with {P}'s car?", "{problem}"),
            ("What car trouble did {P} have?", "{problem}"),
        ],
        when_ask=["When did {P}'s car break down?", "When did {P} have car trouble?"],
        on_ask=["What went wrong for {P} on {date}?"],
    ),
    dict(
        key="reunion",
        topic="old friends",
        tone="happy",
        slots={
            "group": [
                "my university friends",
                "my old football team",
                "the girls from my first job",
                "my cousins",
            ],
            "place": ["a pub in the old town", "a lake house", "our old school"],
        },
        say=[
            "I had a reunion with {group} {when} at {place}. It felt like no time had passed.",
            "{when} I met up with {group} at {place}, first time in years!",
        ],
        photo=["a group of friends laughing around a wooden table"],
        ask=[
            ("Who did {P} have a reunion with?", "{group}"),
            ("Where did {P}'s reunion take place?", "{place}"),
        ],
        when_ask=["When did {P} see her old friends again?", "When was {P}'s reunion?"],
        on_ask=["Who did {P} meet up with on {date}?"],
    ),
]

# --- states that change: stated early, changed later ----------------------------------------------
# say1 states the first value; say2 (a later session) the change, with {when}. ask_latest is
# answered only by say2; ask_when asks when it changed (temporal).
CHANGES = [
    dict(
        key="job",
        topic="work",
        slots={
            "job1": [
                "a receptionist at a dental clinic",
                "a barista",
                "a junior accountant",
                "a delivery driver",
            ],
            "job2": [
                "a project coordinator",
                "a primary school teaching assistant",
                "a UX designer",
                "a paramedic trainee",
            ],
        },
        say1=[
            "I've been working as {job1} for about two years now. It pays the bills.",
            "Work's fine. Being {job1} isn't exactly my dream, but the people are nice.",
        ],
        say2=[
            "Big news, I started a new job {when}! I'm {job2} now.",
            "I handed in my notice and {when} I started as {job2}.",
        ],
        ask_latest=[
            ("What does {P} do for work now?", "{job2}"),
            ("What is {P}'s current job?", "{job2}"),
        ],
        ask_when=["When did {P} start her new job?", "When did {P} change jobs?"],
    ),
    dict(
        key="home",
        topic="the flat",
        slots={
            "area1": [
                "a tiny flat above a bakery",
                "a shared house near the station",
                "my parents' spare room",
            ],
            "area2": [
                "a terraced house with a garden",
                "a flat by the canal",
                "a cottage outside town",
            ],
        },
        say1=[
            "I'm still living in {area1}, it's cosy but I'm running out of space.",
            "Home is {area1} for now. The rent is fair at least.",
        ],
        say2=[
            "We finally moved {when}! We're in {area2} now.",
            "{when} we got the keys to {area2}, I can't stop smiling.",
        ],
        ask_latest=[
            ("Where does {P} live now?", "{area2}"),
            ("What is {P}'s current home like?", "{area2}"),
        ],
        ask_when=["When did {P} move house?", "When did {P} get the keys to the new place?"],
    ),
    dict(
        key="training",
        topic="training",
        slots={
            "goal1": ["a 5k", "a 10k", "a sprint triathlon"],
            "goal2": ["a half marathon", "a full marathon", "an ultramarathon"],
        },
        say1=[
            "I'm training for {goal1} at the moment, three runs a week.",
            "My running plan is all about {goal1} right now.",
        ],
        say2=[
            "I've decided to go bigger: {when} I signed up for {goal2}!",
            "{when} I entered {goal2}, so the training plan just doubled.",
        ],
        ask_latest=[
            ("What race is {P} training for now?", "{goal2}"),
            ("What is {P}'s running goal at the moment?", "{goal2}"),
        ],
        ask_when=[
            "When did {P} sign up for the longer race?",
            "When did {P} decide to enter {goal2}?",
        ],
    ),
    dict(
        key="instrument",
        topic="music lessons",
        slots={
            "inst1": ["the piano", "the guitar", "the ukulele"],
            "inst2": ["the cello", "the drums", "the saxophone", "the violin"],
        },
        say1=[
            "I've been practising {inst1} in the evenings, slowly getting better.",
            "I'm learning {inst1}, mostly from videos.",
        ],
        say2=[
            "I switched instruments! {when} I had my first {inst2} lesson.",
            "{when} I sold my old instrument and started on {inst2}.",
        ],
        ask_latest=[
            ("Which instrument is {P} learning now?", "{inst2}"),
            ("What instrument does {P} play these days?", "{inst2}"),
        ],
        ask_when=["When did {P} start on {inst2}?", "When did {P} switch to a new instrument?"],
    ),
    dict(
        key="car",
        topic="the car",
        slots={
            "car1": ["an old Fiat Panda", "a rusty Ford Fiesta", "a borrowed van"],
            "car2": [
                "an electric Renault Zoe",
                "a second-hand Volvo estate",
                "a little Honda Jazz",
            ],
        },
        say1=[
            "I'm still driving {car1}, it makes a funny noise but it goes.",
            "{car1} is hanging on for dear life.",
        ],
        say2=[
            "{when} I finally replaced the old car, I've got {car2} now!",
            "Goodbye old banger: {when} I picked up {car2}.",
        ],
        ask_latest=[
            ("What car does {P} drive now?", "{car2}"),
            ("What is {P}'s current car?", "{car2}"),
        ],
        ask_when=["When did {P} get the new car?", "When did {P} replace her old car?"],
    ),
    dict(
        key="diet",
        topic="the new diet",
        slots={
            "diet1": ["cutting out sugar", "eating less meat"],
            "diet2": ["fully vegetarian", "vegan", "pescatarian"],
        },
        say1=["I'm trying to eat healthier, mainly {diet1}.", "Food-wise I'm {diet1} for now."],
        say2=[
            "I went the whole way: {when} I became {diet2}.",
            "Since {when} I've been {diet2}, and I feel great.",
        ],
        ask_latest=[
            ("What diet does {P} follow now?", "{diet2}"),
            ("How does {P} eat these days?", "{diet2}"),
        ],
        ask_when=["When did {P} change her diet?", "When did {P} become {diet2}?"],
    ),
]

# --- collections: items of one kind mentioned in different sessions (multi-hop) -------------------
COLLECTIONS = [
    dict(
        key="books",
        items=[b for b, _ in BOOKS],
        say=[
            "I just finished '{item}', couldn't put it down.",
            "Currently reading '{item}' on the bus, it's lovely so far.",
            "Have you read '{item}'? I got through it in two nights.",
            "My book club picked '{item}' this month, I'm loving it.",
        ],
        ask=[
            "What books has {P} read?",
            "Which novels has {P} mentioned reading?",
            "What has {P} been reading lately?",
        ],
    ),
    dict(
        key="kids_likes",
        items=[
            "dinosaurs",
            "space rockets",
            "building blocks",
            "horse riding",
            "drawing comics",
            "swimming lessons",
        ],
        say=[
            "My youngest is obsessed with {item} at the moment, it's all we talk about.",
            "The kids have a new thing: {item}. I've heard about nothing else all week.",
            "You should see my son's face when we talk about {item}, pure joy.",
        ],
        ask=[
            "What are {P}'s kids into?",
            "What do {P}'s children enjoy?",
            "What interests do {P}'s kids have?",
        ],
    ),
    dict(
        key="sports",
        items=["yoga", "bouldering", "swimming", "tennis", "cycling", "kayaking"],
        say=[
            "I've been going to {item} twice a week, it clears my head.",
            "Tried {item} for the first time, I'm hooked.",
            "{item} on Tuesday nights is my new favourite thing.",
        ],
        ask=[
            "What sports does {P} do?",
            "What kinds of exercise has {P} taken up?",
            "Which activities keep {P} fit?",
        ],
    ),
    dict(
        key="trips",
        items=["Lisbon", "Krakow", "Osaka", "Edinburgh", "Valencia", "Tallinn", "Montreal"],
        say=[
            "We got back from {item} and I already miss it. The food!",
            "I spent a long weekend in {item}, so many photos.",
            "Work sent me to {item} for a few days, I squeezed in some sightseeing.",
        ],
        photos=[
            "a narrow cobbled street lined with colourful houses",
            "a plate of pastries on a cafe table by a window",
        ],
        ask=[
            "Which cities has {P} been to this year?",
            "Where has {P} travelled?",
            "What places has {P} visited?",
        ],
    ),
    dict(
        key="pets",
        items=["Biscuit", "Luna", "Pepper", "Mochi", "Rufus", "Olive", "Noodle"],
        say=[
            "{item} knocked a whole glass of water over my laptop this morning, little menace.",
            "I can't leave {item} alone for five minutes without the sofa suffering.",
            "{item} has learned to open the treat cupboard. I'm doomed.",
        ],
        photos=["a scruffy puppy chewing a slipper", "a grey cat curled up in a laundry basket"],
        ask=["What are the names of {P}'s pets?", "What are {P}'s pets called?"],
    ),
    dict(
        key="gifts",
        items=[
            "a hand-knitted scarf",
            "a vintage record player",
            "a framed map of our hometown",
            "a pottery class voucher",
            "a telescope",
        ],
        say=[
            "For my partner's present I went with {item}, I hope it lands well.",
            "I'm giving my dad {item} this year, fingers crossed.",
            "Bought {item} for my sister, she's impossible to buy for.",
        ],
        ask=["What gifts has {P} bought for family?", "What presents did {P} pick out for people?"],
    ),
]

# --- chains: two facts linked by an entity, in different sessions (multi-hop) -------------------
# say1 introduces the entity, say2 (later) tells a fact about it by name only.
CHAINS = [
    dict(
        key="sibling_city",
        slots={"rel": ["sister", "brother", "cousin"], "name": PEOPLE, "city": CITIES},
        say1=[
            "My {rel} {name} is staying with us for a few weeks while she figures things out.",
            "I had lunch with my {rel} {name} today, we don't see each other enough.",
        ],
        say2=[
            "{name} got the job! So she's moving to {city} next month.",
            "Big news from {name}: she's relocating to {city}.",
        ],
        ask=["Which city is {P}'s {rel} moving to?", "Where is {P}'s {rel} relocating?"],
        answer="{city}",
    ),
    dict(
        key="colleague_hobby",
        slots={
            "name": PEOPLE,
            "hobby": [
                "a beekeeper",
                "a competitive chess player",
                "a stand-up comedian",
                "a marathon swimmer",
            ],
        },
        say1=[
            "There's a new guy on my team called {name}, we sit next to each other now.",
            "I've been getting lunch with my coworker {name} most days.",
        ],
        say2=[
            "Turns out {name} is {hobby} in his spare time, who knew?",
            "{name} told me he's actually {hobby} at weekends!",
        ],
        ask=[
            "What does {P}'s coworker do in his free time?",
            "What is the hobby of the colleague {P} sits next to?",
        ],
        answer="{hobby}",
    ),
    dict(
        key="kid_school",
        slots={
            "name": ["Ava", "Noah", "Mila", "Eli", "Zara", "Finn"],
            "school": ["Brookfield Primary", "St Anne's", "Hillcrest Academy"],
        },
        say1=[
            "My eldest, {name}, has been having a tough time with friends lately.",
            "{name}, my oldest, lost her first tooth this week!",
        ],
        say2=[
            "{name} starts at {school} next term, we finally got the letter.",
            "We visited {school} with {name} and she loved it.",
        ],
        ask=[
            "Which school is {P}'s oldest child going to?",
            "What school will {P}'s eldest attend?",
        ],
        answer="{school}",
    ),
    dict(
        key="neighbour_dog",
        slots={
            "name": PEOPLE,
            "dog": ["a three-legged spaniel", "a giant Newfoundland", "a tiny chihuahua"],
        },
        say1=[
            "My new neighbour {name} brought round a cake to say hello, so sweet.",
            "I finally met {name} from next door properly.",
        ],
        say2=[
            "{name} adopted {dog}, and it howls whenever she leaves the house.",
            "{name} has {dog} now, it's the talk of the street.",
        ],
        ask=[
            "What kind of dog does {P}'s neighbour have?",
            "What pet did {P}'s next-door neighbour get?",
        ],
        answer="{dog}",
    ),
]

# --- inference: facts a question can only be answered by reasoning over (open-domain) -------------
INFERENCES = [
    dict(
        key="animal_lover",
        say=[
            "Honestly, I'd take every stray dog home if I could, it kills me to see them in cages.",
            "I've set up a monthly donation to the wildlife rescue near us.",
            "Walking the old dogs at the shelter is the best part of my week.",
        ],
        ask=[
            "Would {P} be likely to support an animal welfare charity?",
            "Is {P} the kind of person who would adopt a rescue pet?",
        ],
        answer="Yes: she volunteers at a shelter and donates to animal rescue",
    ),
    dict(
        key="outdoorsy",
        say=[
            "Nothing beats waking up in a tent with the sound of the river.",
            "I'd rather be on a muddy trail than in a shopping centre any day.",
            "We're planning to spend the whole summer holiday walking in the hills again.",
        ],
        ask=[
            "Would {P} enjoy a hiking holiday?",
            "Is {P} more of an indoors or an outdoors person?",
        ],
        answer="Outdoors: she loves camping and trail walking",
    ),
    dict(
        key="teacher_at_heart",
        say=[
            "The moment a kid finally gets a sum they were stuck on is the best feeling in the "
            "world.",
            "I've been looking at evening courses in education, just out of curiosity.",
            "Helping my niece with her homework is genuinely my favourite part of the weekend.",
        ],
        ask=["What career might {P} be drawn to?", "Would {P} consider working in a school?"],
        answer="Teaching: she loves helping children learn",
    ),
    dict(
        key="homebody",
        say=[
            "My perfect Friday is a blanket, soup and an early night.",
            "I said no to the party again, crowds just drain me these days.",
            "I've turned down three nights out this month and I don't regret any of them.",
        ],
        ask=[
            "Would {P} enjoy a big night out at a club?",
            "Is {P} more of a party person or a stay-at-home type?",
        ],
        answer="Likely not: she prefers quiet nights in",
    ),
    dict(
        key="environment",
        say=[
            "I sold the second car, I cycle to work now even in the rain.",
            "We've started a little compost heap and a recycling rota at home.",
            "I refuse to buy fast fashion any more, everything is second-hand.",
        ],
        ask=["Does {P} care about the environment?", "Would {P} vote for a green policy?"],
        answer="Yes: she cycles, composts and buys second-hand",
    ),
]
